// Entry point of the browser page: connects the page to the service that
// served it and starts it. See app.ts for how the pieces fit.
import { Api } from "./api.js";
import { App } from "./app.js";
import { Auth } from "./auth.js";
import { newClientVpnClient } from "./client.js";
import { Live } from "./live.js";
import { newAdminClient, StatusPanel } from "./status.js";

const auth = new Auth();
const client = newClientVpnClient(window.location.origin, [auth.interceptor]);
const app = new App(new Api(client));
const live = new Live(client, app, app.feed, auth);
app.onLoad = (v) => live.follow(v);
auth.onToken(() => app.reload());
app.start();
const status = new StatusPanel(newAdminClient(window.location.origin, [auth.interceptor]), app.feed, () => app.reload());
auth.onToken(() => void status.load());
void status.load();
