// trustledger passkeys (written for this project; no library). Registers a passkey (the
// challenge is the SHA-256 of the registration statement the page shows) and signs votes: the
// challenge of a vote is the SHA-256 of its statement, the same text the CLI signs with SSH,
// built here from the form's data and the rationale typed. The server rebuilds the statement
// and checks the assertion; this script decides nothing.
(function () {
  "use strict";
  function b64u(buffer) {
    var text = "";
    new Uint8Array(buffer).forEach(function (b) { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function fromB64u(text) {
    var raw = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, function (c) { return c.charCodeAt(0); });
  }
  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }
  function sha256(text) {
    return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  }
  function credentials(list) {
    return list ? list.split(",").map(function (id) {
      return { type: "public-key", id: fromB64u(id) };
    }) : [];
  }
  function put(form, name, value) {
    var input = form.querySelector('input[type="hidden"][name="' + name + '"]');
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  }
  function fail(form, message) {
    var error = form.querySelector(".error");
    error.textContent = message;
    error.hidden = false;
  }
  if (!window.PublicKeyCredential || !window.crypto || !crypto.subtle) return;

  var register = document.getElementById("register-passkey");
  if (register) {
    register.addEventListener("submit", function (event) {
      event.preventDefault();
      var d = register.dataset;
      navigator.credentials.create({
        publicKey: {
          challenge: fromB64u(d.challenge),
          rp: { id: d.rpId, name: "trustledger" },
          user: { id: new TextEncoder().encode(d.member), name: d.member, displayName: d.member },
          pubKeyCredParams: [{ type: "public-key", alg: -7 }],
          authenticatorSelection: { userVerification: "required", residentKey: "discouraged" },
          attestation: "none",
          excludeCredentials: credentials(d.exclude),
          timeout: 120000
        }
      }).then(function (credential) {
        put(register, "credential_id", b64u(credential.rawId));
        put(register, "client_data_json", b64u(credential.response.clientDataJSON));
        put(register, "attestation_object", b64u(credential.response.attestationObject));
        register.submit();
      }).catch(function (e) { fail(register, "No passkey was registered: " + e.message); });
    });
  }

  document.querySelectorAll("form.vote[data-passkeys]").forEach(function (form) {
    if (!form.dataset.passkeys) return;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var d = form.dataset;
      var decision = event.submitter && event.submitter.value === "reject" ? "reject" : "approve";
      var rationale = form.querySelector("textarea").value.replace(/\r\n?/g, "\n");
      // The statement's time: microseconds, UTC, as the log spells times.
      var signedAt = new Date().toISOString().replace("Z", "000Z");
      sha256(rationale).then(function (rationaleDigest) {
        return sha256("trustledger-vote-v1\norigin: " + d.origin + "\nkind: " + d.kind +
          "\nsubject: " + d.subject + "\ndigest: " + d.digest + "\ndecision: " + decision +
          "\nrationale-sha256: " + hex(rationaleDigest) + "\nsigned-at: " + signedAt + "\n");
      }).then(function (challenge) {
        return navigator.credentials.get({
          publicKey: {
            challenge: challenge,
            allowCredentials: credentials(d.passkeys),
            userVerification: "required",
            timeout: 120000
          }
        });
      }).then(function (assertion) {
        put(form, "decision", decision);
        put(form, "signed_at", signedAt);
        put(form, "credential_id", b64u(assertion.rawId));
        put(form, "authenticator_data", b64u(assertion.response.authenticatorData));
        put(form, "client_data_json", b64u(assertion.response.clientDataJSON));
        put(form, "signature", b64u(assertion.response.signature));
        form.submit();
      }).catch(function (e) { fail(form, "The vote was not signed: " + e.message); });
    });
  });
})();
