// Entry point of the browser page: connects the page to the service that
// served it and starts it. See app.ts for how the pieces fit.
import { Api } from "./api.js";
import { App } from "./app.js";
import { newClientVpnClient } from "./client.js";

const app = new App(new Api(newClientVpnClient(window.location.origin)));
app.start();
