// The console's shell: sign-in, the page router (#/playground, #/usage, #/keys), sign-out.

import { ApiError, call, forgetKey, onUnauthorized, storeKey, storedKey } from "./api.js";
import { $, $$ } from "./dom.js";
import * as keys from "./keys.js";
import * as playground from "./playground.js";
import * as usage from "./usage.js";

const PAGES = {
  playground: { module: playground, title: "Playground" },
  usage: { module: usage, title: "Usage" },
  keys: { module: keys, title: "Keys & deployments" },
};
const started = new Map(); // page -> the promise of its init()

function showOnly(id) {
  for (const page of $$("main > .page")) page.hidden = page.id !== id;
}

function signedIn(on) {
  $("#nav").hidden = !on;
  $("#sign-out").hidden = !on;
}

function askToSignIn(message = "") {
  signedIn(false);
  showOnly("page-sign-in");
  document.title = "Sign in · pureai console";
  $("#sign-in-error").textContent = message;
  $("#sign-in-key").focus();
}

function currentPage() {
  const name = location.hash.replace(/^#\/?/, "");
  return name in PAGES ? name : null;
}

async function route(focus = true) {
  if (!storedKey()) return askToSignIn();
  const name = currentPage() ?? "playground";
  const page = PAGES[name];
  signedIn(true);
  showOnly(`page-${name}`);
  document.title = `${page.title} · pureai console`;
  for (const link of $$("#nav a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (focus) $(`#${name}-title`).focus();
  if (!started.has(name)) started.set(name, page.module.init());
  await started.get(name);
  await page.module.show();
}

async function signIn(event) {
  event.preventDefault();
  const input = $("#sign-in-key");
  const key = input.value.trim();
  if (!key) return askToSignIn("Enter an admin key.");
  $("#sign-in-error").textContent = "";
  try {
    await call("v1/admin/keys", { key }); // answers only to an admin key
  } catch (exc) {
    if (!(exc instanceof ApiError)) throw exc;
    const why =
      exc.status === 401 ? "The gateway does not know this key (or it was revoked)."
      : exc.status === 403 ? "This key is not an admin key: the console needs one."
      : `The gateway refused: ${exc.message}`;
    return askToSignIn(why);
  }
  input.value = "";
  storeKey(key);
  if (!currentPage()) history.replaceState(null, "", "#/playground");
  await route();
}

function signOut() {
  forgetKey();
  // A fresh document: nothing of the session stays in memory.
  location.replace(location.pathname);
}

onUnauthorized(() => {
  if (!storedKey()) return;
  forgetKey();
  askToSignIn("The gateway refused the key (revoked or unknown): sign in again.");
});

$("#sign-in-form").addEventListener("submit", signIn);
$("#sign-out").addEventListener("click", signOut);
$("#skip").addEventListener("click", (event) => {
  event.preventDefault();
  $("#main").focus();
});
window.addEventListener("hashchange", () => {
  if (currentPage()) route();
});
route(false);
