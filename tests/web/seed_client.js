// The seed's web client, reduced to what it does with the announcement server: log in by fetch,
// hold EventSourcePolyfill on /sse/connect/{userId} with the Bearer header and an hour's
// heartbeatTimeout, keep every onmessage, and on logout close() the source and call
// /sse/close/{userId}. Opened as seed_client.html?server=URL&user=NAME&password=PW.
//
// tests/web/test_seed_client.py reads window.seedClient over the DevTools protocol and calls
// window.seedClient.close(); the page also shows the same state for a person looking at it.
(function () {
  "use strict";

  var params = new URLSearchParams(window.location.search);
  var server = params.get("server");
  var token = null;
  var source = null;

  var state = {
    // starting -> logging-in -> connecting -> open -> closed; "failed" when login fails
    phase: "starting",
    userId: null,
    opened: 0, // onopen calls
    messages: [], // the data of every message event, in order
    errors: [], // what went wrong, in words
    closeReply: null, // {status, body} of the close call
    close: close,
  };
  window.seedClient = state;

  function setPhase(phase) {
    state.phase = phase;
    document.getElementById("phase").textContent = phase;
  }

  function addItem(listId, text) {
    var item = document.createElement("li");
    item.textContent = text;
    document.getElementById(listId).appendChild(item);
  }

  function fail(where, error) {
    state.errors.push(where + ": " + (error && error.message ? error.message : String(error)));
    addItem("errors", state.errors[state.errors.length - 1]);
  }

  function login() {
    setPhase("logging-in");
    return fetch(server + "/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: params.get("user"), password: params.get("password") }),
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (reply) {
        token = reply.access_token;
        state.userId = reply.user_id || params.get("user");
        connect();
      })
      .catch(function (error) {
        setPhase("failed");
        fail("login", error);
      });
  }

  function connect() {
    setPhase("connecting");
    source = new EventSourcePolyfill(server + "/sse/connect/" + state.userId, {
      headers: { Authorization: "Bearer " + token },
      heartbeatTimeout: 3600000,
    });
    source.onopen = function () {
      state.opened += 1;
      setPhase("open");
    };
    source.onmessage = function (event) {
      state.messages.push(event.data);
      addItem("messages", event.data);
    };
    source.onerror = function (event) {
      fail("stream", event && event.error ? event.error : "error event");
    };
  }

  // logout, as the seed does it: close the source, then tell the server
  function close() {
    if (source !== null) {
      source.close();
    }
    setPhase("closed");
    return fetch(server + "/sse/close/" + state.userId, {
      method: "POST",
      headers: { Authorization: "Bearer " + token },
    })
      .then(function (response) {
        return response.json().then(function (body) {
          state.closeReply = { status: response.status, body: body };
          return state.closeReply;
        });
      })
      .catch(function (error) {
        fail("close", error);
        return null;
      });
  }

  document.addEventListener("DOMContentLoaded", login);
})();
