/** The part of jStat (no bundled types) that paired.ts uses. */
declare module 'jstat' {
  const jStat: {
    studentt: { inv(p: number, dof: number): number; cdf(x: number, dof: number): number }
  }
  export default jStat
}
