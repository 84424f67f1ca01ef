// Building the page from data. Every piece of text, from users above all (job names,
// error messages), goes in as a text node: nothing here parses a string as HTML.

/** h("a", {href: "#/", className: "x", onclick: fn}, "text", child) -> an element */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the element's content only when it changed: polling must not flicker. */
export function setText(element, text) {
  const value = String(text ?? "");
  if (element.textContent !== value) element.textContent = value;
}

export function setChildren(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

export function toggle(element, visible) {
  element.hidden = !visible;
}
