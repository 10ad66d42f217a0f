// Maxxit wallet link: ask the server for the exact Sign-In with Ethereum message for this
// wallet, have the wallet sign it (personal_sign), send it back. No external scripts.
"use strict";

(function () {
  const button = document.getElementById("connect");
  const status = document.getElementById("status");
  const params = new URLSearchParams(location.search);
  // inside Telegram as a Mini App, initData arrives in the URL fragment
  const initData = new URLSearchParams(location.hash.slice(1)).get("tgWebAppData") || "";
  const token = params.get("t") || "";

  function say(text, kind) {
    status.textContent = text;
    status.className = kind || "";
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({ reason: "bad_response" }));
    if (!response.ok) throw new Error(data.reason || "refused");
    return data;
  }

  function toHex(text) {
    return "0x" + Array.from(new TextEncoder().encode(text))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  const reasons = {
    link_expired: "This link has expired. Send /link in the chat for a new one.",
    link_used: "This link was already used. Send /link in the chat for a new one.",
    wrong_chain: "Switch your wallet to Ethereum or Arbitrum and try again.",
    nonce_used: "This message was already used. Send /link again.",
    expired: "The message expired. Try again.",
    bad_signature: "The signature does not match the wallet.",
    address_taken: "This wallet is linked to another Maxxit account.",
    bad_init_data: "Open this page from the Maxxit bot.",
  };

  async function link() {
    if (!window.ethereum) {
      say("No browser wallet found.", "err");
      document.getElementById("manual").hidden = false;
      return;
    }
    button.disabled = true;
    try {
      say("Connecting…");
      const [address] = await window.ethereum.request({ method: "eth_requestAccounts" });
      const chainId = parseInt(await window.ethereum.request({ method: "eth_chainId" }), 16);
      const issued = await post("/api/siwe/nonce", { token, initData, address, chainId });
      say("Check your wallet and sign the message…");
      const signature = await window.ethereum.request({
        method: "personal_sign",
        params: [toHex(issued.message), address],
      });
      const done = await post("/api/siwe/verify", {
        token: issued.token, message: issued.message, signature,
      });
      say("Linked " + done.address + ". You can go back to the chat.", "ok");
      // the link token is spent now: the approval goes on with the fresh one verify gave
      if (params.get("hl") === "1") showApproval(done.token);
    } catch (error) {
      const reason = error && error.message;
      say(reasons[reason] || "Not linked: " + (reason || "unknown error"), "err");
      button.disabled = false;
    }
  }

  // Hyperliquid agent approval: the wallet signs approveAgent (EIP-712) for our key
  const hl = document.getElementById("hl");
  const hlStatus = document.getElementById("hlstatus");
  let hlToken = token;

  function showApproval(linkToken) {
    hlToken = linkToken || token;
    hl.hidden = false;
  }

  async function approve() {
    const approveButton = document.getElementById("approve");
    approveButton.disabled = true;
    try {
      hlStatus.textContent = "Preparing…";
      const req = await post("/api/hyperliquid/approval", { token: hlToken });
      document.getElementById("agent").textContent = req.agent;
      hlStatus.textContent = "Check your wallet and sign…";
      const signature = await window.ethereum.request({
        method: "eth_signTypedData_v4",
        params: [req.account, JSON.stringify(req.typedData)],
      });
      await post("/api/hyperliquid/approve", { token: hlToken, action: req.action, signature });
      hlStatus.textContent = "Approved. Go back to the chat and deploy.";
      hlStatus.className = "ok";
    } catch (error) {
      hlStatus.textContent = "Not approved: " + ((error && error.message) || "unknown error");
      hlStatus.className = "err";
      approveButton.disabled = false;
    }
  }
  document.getElementById("approve").addEventListener("click", approve);
  if (params.get("hl") === "1" && token) showApproval(token);

  // Ostium delegation: the wallet itself sends setDelegate(agent) and approve(USDC)
  const ost = document.getElementById("ost");
  const ostStatus = document.getElementById("oststatus");

  // the delegation as the chain has it now, and what is left to send
  function showDelegation(req) {
    document.getElementById("ostagent").textContent = req.agent;
    const todo = req.transactions.map((tx) => tx.purpose.replace("ostium_", "").replace(/_/g, " "));
    document.getElementById("oststate").textContent = req.delegated
      ? "Delegation: active (USDC approved: " + req.allowance + ")" +
        (todo.length ? ". Still to send: " + todo.join(", ") : "")
      : "Delegation: not set up. Your wallet will send: " + todo.join(", ");
  }

  async function delegate() {
    const delegateButton = document.getElementById("delegate");
    delegateButton.disabled = true;
    try {
      ostStatus.textContent = "Preparing…";
      const req = await post("/api/ostium/delegation", { token: token });
      showDelegation(req);
      for (const tx of req.transactions) {
        ostStatus.textContent = "Check your wallet and confirm (" + tx.purpose + ")…";
        await window.ethereum.request({
          method: "eth_sendTransaction",
          params: [{ from: req.account, to: tx.to, data: tx.data, value: tx.value }],
        });
      }
      if (req.rotation) {
        // a key rotation: done once the chain names the new key (the server reads it)
        ostStatus.textContent = "Waiting for the transaction to be mined…";
        let rotated = false;
        for (let tries = 0; tries < 60 && !rotated; tries++) {
          rotated = (await post("/api/ostium/confirm", { token: token })).rotated;
          if (!rotated) await new Promise((resolve) => setTimeout(resolve, 2000));
        }
        ostStatus.textContent = rotated
          ? "Done: the new key trades for you, the old one can no longer act."
          : "Sent. Maxxit switches to the new key once it is mined; the chat will tell you.";
        ostStatus.className = "ok";
        return;
      }
      showDelegation(await post("/api/ostium/delegation", { token: token }));
      ostStatus.textContent = "Done. Go back to the chat: /wallet shows the delegation.";
      ostStatus.className = "ok";
    } catch (error) {
      ostStatus.textContent = "Not set up: " + ((error && error.message) || "unknown error");
      ostStatus.className = "err";
      delegateButton.disabled = false;
    }
  }
  document.getElementById("delegate").addEventListener("click", delegate);
  if (params.get("ost") === "1" && token) {
    ost.hidden = false;
    post("/api/ostium/delegation", { token: token }).then(showDelegation, (error) => {
      ostStatus.textContent = "Ostium unavailable: " + ((error && error.message) || "unknown");
      ostStatus.className = "err";
    });
  }

  if (!token && !initData) {
    say("Open this page from the link the Maxxit bot sent you.", "err");
    button.disabled = true;
  }
  button.addEventListener("click", link);
})();
