/** Pure scoring core (sclite-compatible); the stage/CLI wiring lives elsewhere. */
export * from './trn.js'
export * from './align.js'
export * from './score.js'
export * from './report.js'
export * from './label-map.js'
export * from './timit-phones.js'
