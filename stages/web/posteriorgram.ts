/**
 * The posteriorgram of one utterance on a canvas: frames left to right, classes (pdfs) bottom to
 * top, brightness = posterior probability, and the best path (the pdf of every frame) drawn over
 * it in red. Drawn at a fixed number of pixels per frame and per class, so it can be compared
 * across utterances; CSS may scale it.
 */
const PX_FRAME = 2
const PX_CLASS = 4

/** A dark-to-bright ramp (black → blue → yellow), readable in print and for most colour vision. */
function ramp(p: number): [number, number, number] {
  const v = Math.min(1, Math.max(0, p))
  return [Math.round(255 * v ** 1.5), Math.round(230 * v), Math.round(255 * Math.min(1, 2.5 * v) * (1 - 0.6 * v))]
}

export function drawPosteriorgram(
  canvas: HTMLCanvasElement,
  logp: Float32Array,
  frames: number,
  classes: number,
  path: Int32Array,
): void {
  canvas.width = frames * PX_FRAME
  canvas.height = classes * PX_CLASS
  const ctx = canvas.getContext('2d')
  if (!ctx) return
  const img = ctx.createImageData(canvas.width, canvas.height)
  for (let t = 0; t < frames; t++) {
    for (let c = 0; c < classes; c++) {
      const [r, g, b] = ramp(Math.exp(logp[t * classes + c]))
      const y0 = (classes - 1 - c) * PX_CLASS
      for (let dy = 0; dy < PX_CLASS; dy++)
        for (let dx = 0; dx < PX_FRAME; dx++) {
          const o = ((y0 + dy) * canvas.width + t * PX_FRAME + dx) * 4
          img.data[o] = r
          img.data[o + 1] = g
          img.data[o + 2] = b
          img.data[o + 3] = 255
        }
    }
  }
  ctx.putImageData(img, 0, 0)
  if (path.length !== frames) return
  ctx.strokeStyle = '#ff3b30'
  ctx.lineWidth = 1.5
  ctx.beginPath()
  for (let t = 0; t < frames; t++) {
    const y = (classes - 1 - path[t] + 0.5) * PX_CLASS
    if (t === 0) ctx.moveTo(0, y)
    else ctx.lineTo(t * PX_FRAME, y)
    ctx.lineTo((t + 1) * PX_FRAME, y)
  }
  ctx.stroke()
}
