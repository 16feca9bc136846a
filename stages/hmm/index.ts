/** Pure HMM core: topology, lexicon, LM, graphs, frame scores, alignment, decoding, flat start. */
export * from './topology.js';
export * from './lexicon.js';
export * from './lm.js';
export * from './graph.js';
export * from './frame-scores.js';
export * from './segments.js';
export * from './viterbi.js';
export * from './decode.js';
export * from './flat-start.js';
