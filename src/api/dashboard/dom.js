// Small helpers shared by the views: building elements and writing values
// as people read them.

/** An element with attributes (`class`, `text`, `onEVENT` handlers) and children. */
export function element (name, attributes = {}, ...children) {
  const node = document.createElement(name)
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'class') node.className = value
    else if (key === 'text') node.textContent = value
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value)
    else node.setAttribute(key, value)
  }
  node.append(...children)
  return node
}

const integer = new Intl.NumberFormat()

/** A whole number, compact from ten thousand on. */
export function count (value) {
  return value >= 10000 ? new Intl.NumberFormat(undefined, { notation: 'compact' }).format(value) : integer.format(value)
}

/** A metric's value by its kind: `count`, `percent`, `decimal` or `duration`. */
export function formatMetric (kind, value) {
  if (value === null || value === undefined) return '–'
  switch (kind) {
    case 'percent': return `${value}%`
    case 'decimal': return String(value)
    case 'duration': {
      const seconds = Math.round(value)
      const minutes = Math.floor(seconds / 60)
      return minutes ? `${minutes}m ${String(seconds % 60).padStart(2, '0')}s` : `${seconds}s`
    }
    default: return count(value)
  }
}

/** A time bucket's label for an axis (short) or a tooltip (`long`). */
export function bucketLabel (label, interval, long) {
  if (!label) return ''
  const date = label.slice(0, 10)
  const day = new Date(`${date}T00:00:00Z`)
  const options = { timeZone: 'UTC' }
  if (interval === 'hour' || interval === 'minute') {
    return long ? `${date} ${label.slice(11, 16)}` : label.slice(11, 16)
  }
  if (interval === 'month') return day.toLocaleDateString(undefined, { ...options, month: 'short', year: 'numeric' })
  return day.toLocaleDateString(undefined, { ...options, month: 'short', day: 'numeric', ...(long ? { year: 'numeric' } : {}) })
}
