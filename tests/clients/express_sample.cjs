// The seed guide's "Connecting with Node.js" sample (express + express-session + keycloak-connect),
// verbatim except that the four placeholders come from the environment:
//   REALM, AUTH_SERVER_URL, CLIENT_ID, CLIENT_SECRET  (and PORT, which the sample already reads).
// Started as a child process by express_keycloak_connect.mjs.
// Notes on the seed's code as it runs with the pinned versions (express 5, keycloak-connect 26):
//  * GET /logout never reaches the seed's own route: keycloak.middleware() installs keycloak-connect's
//    logout middleware (middleware/logout.js) for /logout first, which drops the grant and redirects
//    to the server's end-session endpoint with id_token_hint + post_logout_redirect_uri=http://localhost:PORT/.
//    (The seed's req.logout() does not exist in express 5 / keycloak-connect; it is dead code.)
//  * app.listen(port) listens on all interfaces, as in the seed.
const express = require("express");
const session = require("express-session");
const Keycloak = require("keycloak-connect");

const app = express();
const port = process.env.PORT || 3000;

const memoryStore = new session.MemoryStore();

app.use(
  session({
    secret: "supersecret",
    resave: false,
    saveUninitialized: true,
    store: memoryStore,
  })
);

const keycloakConfig = {
  realm: process.env.REALM, // "REALM"
  authServerUrl: process.env.AUTH_SERVER_URL, // "AUTH_SERVER_URL"
  clientId: process.env.CLIENT_ID, // "CLIENT_ID"
  credentials: {
    secret: process.env.CLIENT_SECRET, // "CLIENT_SECRET"
  },
  sslRequired: "external",
  confidentialPort: 0,
};

const keycloak = new Keycloak({ store: memoryStore }, keycloakConfig);

app.use(keycloak.middleware());

app.get("/", (req, res) => {
  res.send("Welcome to the public route.");
});

app.get("/protected", keycloak.protect(), (req, res) => {
  res.send("You have accessed a protected route.");
});

app.get("/logout", (req, res) => {
  req.logout();
  res.redirect("/");
});

app.listen(port, () => {
  console.log(`Server running at http://localhost:${port}`);
});
