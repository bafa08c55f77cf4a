// Access control in the page (issue 14): when the service answers
// Unauthenticated, the page asks for a bearer token once, keeps it for the
// tab's life in sessionStorage, and sends it as "Authorization: Bearer …" on
// every call, the watch stream included. A browser that presents a client
// certificate (mTLS) is never asked: its calls do not fail Unauthenticated.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { h } from "./dom.js";

/** storageKey names the token in sessionStorage. */
const storageKey = "vpnfacade.token";

/** Auth holds the token and the prompt that asks for it. */
export class Auth {
  private form: HTMLFormElement | undefined;
  private why: HTMLElement | undefined;
  private memory = ""; // the token, when sessionStorage is unavailable
  private listeners: (() => void)[] = [];

  /** token returns the token the user gave in this tab, or "". */
  token(): string {
    try {
      return sessionStorage.getItem(storageKey) ?? "";
    } catch {
      return this.memory; // storage disabled: the token lives as long as the page
    }
  }

  /** onToken adds a function called when the user gives a new token. */
  onToken(l: () => void): void {
    this.listeners.push(l);
  }

  /** interceptor adds the token to every call and asks for one on Unauthenticated. */
  readonly interceptor: Interceptor = (next) => async (req) => {
    const t = this.token();
    if (t !== "") req.header.set("Authorization", `Bearer ${t}`);
    try {
      return await next(req);
    } catch (err) {
      this.noteError(err);
      throw err;
    }
  };

  /**
   * noteError shows the prompt when err says the call needs credentials.
   * Streams report their errors while they are read, so the watch calls it
   * itself; it reports whether err was Unauthenticated.
   */
  noteError(err: unknown): boolean {
    if (!(err instanceof ConnectError) || err.code !== Code.Unauthenticated) return false;
    this.prompt(this.token() !== "");
    return true;
  }

  /** prompt shows the token form; refused says the stored token was turned down. */
  private prompt(refused: boolean): void {
    document.body.dataset.auth = "needed";
    const why = refused
      ? "The service refused the token this tab holds. Enter a bearer token it accepts."
      : "The service needs a bearer token (or a client certificate) to show its endpoints.";
    if (this.form && this.why) {
      this.why.textContent = why;
      this.form.hidden = false;
      return;
    }
    const input = h("input", {
      type: "password", id: "auth-token", name: "token", autocomplete: "off", spellcheck: "false",
      required: true, "aria-describedby": "auth-why",
    });
    const form = h("form", { id: "auth", class: "auth", "aria-labelledby": "auth-title" },
      h("h2", { id: "auth-title" }, "Sign in"),
      (this.why = h("p", { id: "auth-why" }, why)),
      h("label", { for: "auth-token" }, "Token "),
      input,
      " ",
      h("button", { type: "submit", id: "auth-submit" }, "Use token"),
      h("p", { class: "sub" }, "The token is kept in this tab only (sessionStorage) and sent as Authorization: Bearer."),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = input.value.trim();
      if (t === "") return;
      try {
        sessionStorage.setItem(storageKey, t);
      } catch {
        this.memory = t;
      }
      input.value = "";
      form.hidden = true;
      document.body.dataset.auth = "token";
      for (const l of this.listeners) l();
    });
    this.form = form;
    document.querySelector("header.top")?.after(form);
    input.focus();
  }
}
