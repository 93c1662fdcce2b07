// Charts drawn as SVG: a line chart with an optional comparison line and
// hover tooltips. Each chart carries a text description for screen readers.

const SVG = 'http://www.w3.org/2000/svg'

function node (name, attributes = {}, parent) {
  const element = document.createElementNS(SVG, name)
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value))
  if (parent) parent.appendChild(element)
  return element
}

/** A round upper bound for an axis, and its ticks. */
function scale (maximum) {
  if (!(maximum > 0)) return { top: 1, ticks: [0, 1] }
  const magnitude = 10 ** Math.floor(Math.log10(maximum))
  const step = [1, 2, 2.5, 5, 10].map(f => f * magnitude).find(s => maximum / s <= 4) || magnitude * 10
  const top = Math.ceil(maximum / step) * step
  const ticks = []
  for (let value = 0; value <= top + step / 2; value += step) ticks.push(value)
  return { top, ticks }
}

/**
 * Draws `series` (`[{name, values, comparison}]`, values aligned with
 * `labels`) into `container`; `formatValue` writes values, `formatLabel`
 * the x labels.
 */
export function lineChart (container, { labels, series, formatValue, formatLabel, title }) {
  container.replaceChildren()
  const width = 800
  const height = 260
  const margin = { top: 12, right: 16, bottom: 28, left: 56 }
  const innerWidth = width - margin.left - margin.right
  const innerHeight = height - margin.top - margin.bottom
  const values = series.flatMap(s => s.values).filter(v => typeof v === 'number')
  const { top, ticks } = scale(Math.max(0, ...values))
  const x = (i) => margin.left + (labels.length <= 1 ? innerWidth / 2 : (i * innerWidth) / (labels.length - 1))
  const y = (v) => margin.top + innerHeight - (v / top) * innerHeight

  const svg = node('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img' })
  const described = series[0]
    ? `${title}: ${labels.map((l, i) => `${formatLabel(l)} ${formatValue(series[0].values[i])}`).join(', ')}`
    : title
  node('title', {}, svg).textContent = described

  for (const tick of ticks) {
    node('line', { x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick), class: 'grid' }, svg)
    const text = node('text', { x: margin.left - 8, y: y(tick) + 4, class: 'axis', 'text-anchor': 'end' }, svg)
    text.textContent = formatValue(tick)
  }
  const every = Math.max(1, Math.ceil(labels.length / 8))
  labels.forEach((label, i) => {
    if (i % every !== 0) return
    const text = node('text', { x: x(i), y: height - 8, class: 'axis', 'text-anchor': 'middle' }, svg)
    text.textContent = formatLabel(label)
  })
  for (const line of [...series].reverse()) {
    const points = line.values
      .map((v, i) => (typeof v === 'number' ? `${x(i)},${y(v)}` : null))
      .filter(Boolean)
    node('polyline', { points: points.join(' '), class: line.comparison ? 'line comparison' : 'line' }, svg)
  }

  // Hover: the nearest bucket's values.
  const cursor = node('line', { y1: margin.top, y2: margin.top + innerHeight, class: 'cursor', visibility: 'hidden' }, svg)
  const tooltip = document.createElement('div')
  tooltip.className = 'tooltip'
  tooltip.hidden = true
  const overlay = node('rect', { x: margin.left, y: margin.top, width: innerWidth, height: innerHeight, class: 'overlay' }, svg)
  overlay.addEventListener('mousemove', (event) => {
    const box = svg.getBoundingClientRect()
    const position = ((event.clientX - box.left) / box.width) * width
    const i = Math.max(0, Math.min(labels.length - 1, Math.round(((position - margin.left) / innerWidth) * (labels.length - 1))))
    cursor.setAttribute('x1', x(i))
    cursor.setAttribute('x2', x(i))
    cursor.setAttribute('visibility', 'visible')
    tooltip.replaceChildren()
    const heading = document.createElement('strong')
    heading.textContent = formatLabel(labels[i], true)
    tooltip.appendChild(heading)
    for (const line of series) {
      const row = document.createElement('div')
      row.className = line.comparison ? 'muted' : ''
      row.textContent = `${line.name}: ${formatValue(line.values[i])}`
      tooltip.appendChild(row)
    }
    tooltip.hidden = false
    const left = (x(i) / width) * box.width
    tooltip.style.left = `${Math.min(left, box.width - 180)}px`
  })
  overlay.addEventListener('mouseleave', () => {
    cursor.setAttribute('visibility', 'hidden')
    tooltip.hidden = true
  })
  container.append(svg, tooltip)
}

/**
 * Draws a paths answer (`nodes` and `links` by step) as a flow diagram:
 * a column of nodes per step, each as tall as its persons, and bands
 * between the steps as wide as the persons who went that way.
 */
export function flowChart (answer, { label = 'Paths' } = {}) {
  const steps = [...new Set(answer.nodes.map(n => n.step))].sort((a, b) => a - b)
  const columnWidth = 210
  const nodeWidth = 12
  const gap = 14
  const margin = { top: 28, right: 150, bottom: 12, left: 12 }
  const columns = steps.map(step => answer.nodes.filter(n => n.step === step).sort((a, b) => b.users - a.users))
  const tallest = Math.max(1, ...columns.map(c => c.length))
  const height = Math.max(240, tallest * 44) + margin.top + margin.bottom
  const width = margin.left + Math.max(0, steps.length - 1) * columnWidth + nodeWidth + margin.right
  const inner = height - margin.top - margin.bottom
  const persons = Math.max(1, ...columns.map(c => c.reduce((n, node) => n + node.users, 0)))
  const unit = Math.max(0, inner - (tallest - 1) * gap) / persons

  const svg = node('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart flow', role: 'img' })
  // Its natural size: a wide diagram scrolls rather than shrinks.
  svg.style.width = `${width}px`
  const described = answer.links.slice(0, 20).map(l => `${l.source} then ${l.target}: ${l.users}`).join('; ')
  node('title', {}, svg).textContent = `${label}. ${described || 'No path.'}`
  // Where each node sits, and how much of it its bands have used so far.
  const boxes = new Map()
  columns.forEach((column, c) => {
    const x = margin.left + c * columnWidth
    let y = margin.top
    const heading = node('text', { x, y: 16, class: 'axis' }, svg)
    heading.textContent = steps[c] === 0 ? 'Start' : `Step ${steps[c]}`
    for (const item of column) {
      const h = Math.max(2, item.users * unit)
      boxes.set(`${steps[c]}:${item.event}`, { x, y, h, out: 0, in: 0 })
      y += h + gap
    }
  })
  const bands = node('g', { class: 'flow-links' }, svg)
  for (const link of answer.links) {
    const from = boxes.get(`${link.step - 1}:${link.source}`)
    const to = boxes.get(`${link.step}:${link.target}`)
    if (!from || !to) continue
    const thickness = Math.max(1, link.users * unit)
    const y0 = from.y + from.out + thickness / 2
    const y1 = to.y + to.in + thickness / 2
    from.out += thickness
    to.in += thickness
    const x0 = from.x + nodeWidth
    const x1 = to.x
    const middle = (x0 + x1) / 2
    const band = node('path', {
      d: `M${x0},${y0} C${middle},${y0} ${middle},${y1} ${x1},${y1}`,
      class: 'flow-link',
      'stroke-width': thickness
    }, bands)
    node('title', {}, band).textContent = `${link.source} → ${link.target}: ${link.users}`
  }
  columns.forEach((column, c) => {
    for (const item of column) {
      const box = boxes.get(`${steps[c]}:${item.event}`)
      const group = node('g', { class: 'flow-node' }, svg)
      node('rect', { x: box.x, y: box.y, width: nodeWidth, height: box.h, rx: 2 }, group)
      const text = node('text', { x: box.x + nodeWidth + 6, y: box.y + Math.min(box.h / 2, 14) + 4 }, group)
      const name = item.event.length > 24 ? `${item.event.slice(0, 23)}…` : item.event
      text.textContent = `${name} ${item.users}`
      node('title', {}, group).textContent = `${item.event}: ${item.users}`
    }
  })
  return svg
}
