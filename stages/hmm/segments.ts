/** Time segments of words/units found by alignment or decoding (frames, end exclusive). */
export interface Segment {
  readonly label: string
  readonly start: number
  readonly end: number
  readonly silence: boolean
}
