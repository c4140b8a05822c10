// Building the page: every value becomes a text node, never markup.

/** An element with attributes (`on*` functions become listeners) and children. */
export function h(tag, attributes = {}, ...children) {
  const svg = ["svg", "line", "rect", "text", "title", "circle", "g"].includes(tag);
  const element = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces what `element` holds. */
export function show(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/** A short message for screen readers and eyes, replaced by the next one. */
export function notify(message, kind = "info") {
  const notice = document.getElementById("notice");
  show(notice, h("p", { class: `notice ${kind}` }, message));
}

/** RFC 3339 as the reader's local date and time; "—" for nothing. */
export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

/** Days from now until `value` (negative: past). */
export function daysUntil(value) {
  return (new Date(value).getTime() - Date.now()) / 86_400_000;
}

/** A labelled form control. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control,
    hint ? h("small", {}, hint) : null);
}

/** A table: `columns` are [heading, cell(item)]. */
export function table(caption, columns, items) {
  return h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, columns.map(([heading]) => h("th", { scope: "col" }, heading)))),
    h("tbody", {}, items.map((item) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(item)))))));
}

/** A status word with its colour. */
export function badge(status) {
  return h("span", { class: `badge ${String(status).replace(/[^a-z_]/g, "")}` }, status);
}
