// Small DOM helpers. Text always goes through textContent, never innerHTML:
// descriptions, tags and banners are user text.

/** Attributes h accepts: strings set as attributes, false/undefined skipped. */
export type Attrs = Record<string, string | number | boolean | undefined>;

/** A child of h: a node, text, or nothing. */
export type Child = Node | string | null | undefined | false;

/** h creates an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, ...children);
  return el;
}

/** append adds children to el, skipping empty ones. */
export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c);
  }
}

/** byId returns the element with the given id; the page's markup guarantees it. */
export function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

/** copyText puts text on the clipboard, falling back to a selection copy. */
export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    return;
  } catch {
    // Not a secure context or no permission: copy through a selection.
  }
  const area = h("textarea", { readonly: true, "aria-hidden": "true", class: "offscreen" });
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}
