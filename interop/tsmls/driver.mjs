// driver.mjs: one ts-mls client (one group member) driven over stdin/stdout.
//
// Protocol: one JSON object per line. Request {"id":N,"op":"...",...};
// response {"id":N,"ok":true,...} or {"id":N,"ok":false,"error":"..."}.
// Binary values are lower-case hex. Requests are handled strictly in order.
// Logs go to stderr; stdout carries responses only. See README.md.

import { createInterface } from "node:readline";
import {
  acceptAll,
  ciphersuites,
  createApplicationMessage,
  createCommit,
  createGroup,
  createProposal,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  makePskIndex,
  mlsExporter,
  processMessage,
} from "ts-mls";
import { decodeRatchetTree, encodeRatchetTree } from "ts-mls/ratchetTree.js";

const log = (...a) => console.error("[tsmls-driver]", ...a);

class RequestError extends Error {}

// ---------- encoding helpers ----------

function hexOf(b) {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

function bytesOf(h, field) {
  if (typeof h !== "string" || h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) {
    throw new RequestError(`field ${field}: expected an even-length hex string`);
  }
  return new Uint8Array(Buffer.from(h, "hex"));
}

function reqBool(req, field, dflt) {
  const v = req[field];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "boolean") throw new RequestError(`field ${field}: expected a boolean`);
  return v;
}

function reqWireFormat(req, dflt) {
  const v = req.wireFormat ?? dflt;
  if (v !== "public" && v !== "private") {
    throw new RequestError(`field wireFormat: expected "public" or "private", got ${JSON.stringify(v)}`);
  }
  return v;
}

function reqUint(v, field) {
  if (!Number.isSafeInteger(v) || v < 0) throw new RequestError(`field ${field}: expected a non-negative integer`);
  return v;
}

const mlsMsg = (content) => encodeMlsMessage({ version: "mls10", ...content });

function decodeMls(bytes, field) {
  let res;
  try {
    res = decodeMlsMessage(bytes, 0);
  } catch (e) {
    throw new RequestError(`field ${field}: cannot decode MLSMessage: ${e?.message ?? e}`);
  }
  if (res === undefined) throw new RequestError(`field ${field}: cannot decode MLSMessage`);
  const [msg, used] = res;
  if (used !== bytes.length) {
    throw new RequestError(`field ${field}: ${bytes.length - used} trailing bytes after MLSMessage`);
  }
  return msg;
}

// GREASE values (RFC 9420 §13.5) have the form 0x?A?A.
const isGrease = (v) => {
  const n = typeof v === "string" ? Number(v) : v;
  return Number.isInteger(n) && (n & 0x0f0f) === 0x0a0a;
};

function capabilities(grease) {
  const caps = defaultCapabilities();
  if (grease) return caps;
  const keep = (xs) => xs.filter((x) => !isGrease(x));
  return {
    versions: caps.versions,
    ciphersuites: keep(caps.ciphersuites),
    extensions: keep(caps.extensions),
    proposals: keep(caps.proposals),
    credentials: keep(caps.credentials),
  };
}

// ---------- client state ----------

const st = {
  cs: undefined, // CiphersuiteImpl
  suite: undefined, // numeric code point
  credential: undefined,
  sigKeys: undefined, // {signKey (PKCS#8 for Ed25519), publicKey}
  caps: undefined,
  pendingKP: undefined, // {publicPackage, privatePackage} awaiting a Welcome
  group: undefined, // ClientState
};

function needInit() {
  if (st.cs === undefined) throw new RequestError("not initialised: send init first");
}
function needGroup() {
  needInit();
  if (st.group === undefined) throw new RequestError("no group: createGroup or joinFromWelcome first");
}

const epochInfo = (g) => ({
  epoch: Number(g.groupContext.epoch),
  epochAuthenticator: hexOf(g.keySchedule.epochAuthenticator),
});

function treeHex(g) {
  return hexOf(encodeRatchetTree(g.ratchetTree));
}

function members(g) {
  const out = [];
  g.ratchetTree.forEach((node, i) => {
    if (i % 2 !== 0 || node === undefined || node.nodeType !== "leaf") return;
    const cred = node.leaf.credential;
    out.push({
      leaf: i / 2,
      identity: cred.credentialType === "basic" ? hexOf(cred.identity) : "",
      signaturePublicKey: hexOf(node.leaf.signaturePublicKey),
    });
  });
  return out;
}

function activeState(g) {
  return g.groupActiveState?.kind ?? "active";
}

async function newKeyPackage() {
  return generateKeyPackageWithKey(st.credential, st.caps, defaultLifetime, [], st.sigKeys, st.cs);
}

// ---------- ops ----------

const ops = {
  async init(req) {
    if (st.cs !== undefined) throw new RequestError("already initialised");
    const suite = reqUint(req.suite, "suite");
    const name = Object.keys(ciphersuites).find((k) => ciphersuites[k] === suite);
    if (name === undefined) throw new RequestError(`cipher suite ${suite} is not known to ts-mls 1.6.4`);
    const identity = bytesOf(req.identity, "identity");
    const cs = await getCiphersuiteImpl(getCiphersuiteFromName(name));
    const sigKeys = await cs.signature.keygen();
    st.cs = cs;
    st.suite = suite;
    st.credential = { credentialType: "basic", identity };
    st.sigKeys = sigKeys;
    st.caps = capabilities(reqBool(req, "grease", true));
    log(`init suite ${suite} (${name}) identity ${req.identity}`);
    return {
      suiteName: name,
      signaturePublicKey: hexOf(sigKeys.publicKey),
      signaturePrivateKey: hexOf(sigKeys.signKey),
    };
  },

  async keyPackage() {
    needInit();
    const kp = await newKeyPackage();
    st.pendingKP = kp;
    return {
      keyPackage: hexOf(mlsMsg({ wireformat: "mls_key_package", keyPackage: kp.publicPackage })),
      initPrivateKey: hexOf(kp.privatePackage.initPrivateKey),
      encryptionPrivateKey: hexOf(kp.privatePackage.hpkePrivateKey),
    };
  },

  async createGroup(req) {
    needInit();
    if (st.group !== undefined) throw new RequestError("already in a group");
    const groupId = bytesOf(req.groupId, "groupId");
    const kp = await newKeyPackage();
    st.group = await createGroup(groupId, kp.publicPackage, kp.privatePackage, [], st.cs);
    return { ...epochInfo(st.group), ownLeaf: st.group.privatePath.leafIndex };
  },

  async addMembers(req) {
    needGroup();
    if (!Array.isArray(req.keyPackages) || req.keyPackages.length === 0) {
      throw new RequestError("field keyPackages: expected a non-empty array of hex MLSMessage KeyPackages");
    }
    if (reqBool(req, "withPath", false)) {
      throw new RequestError(
        "withPath is not supported by ts-mls 1.6.4: its createCommit adds an UpdatePath only when the " +
          "commit is empty or holds Update/Remove proposals, never for Add-only commits",
      );
    }
    const proposals = req.keyPackages.map((h, i) => {
      const msg = decodeMls(bytesOf(h, `keyPackages[${i}]`), `keyPackages[${i}]`);
      if (msg.wireformat !== "mls_key_package") {
        throw new RequestError(`keyPackages[${i}]: expected an mls_key_package MLSMessage, got ${msg.wireformat}`);
      }
      return { proposalType: "add", add: { keyPackage: msg.keyPackage } };
    });
    return commitWith(proposals, {
      ratchetTreeExtension: reqBool(req, "ratchetTreeExtension", false),
      wireFormat: reqWireFormat(req, "private"),
    });
  },

  async joinFromWelcome(req) {
    needInit();
    if (st.group !== undefined) throw new RequestError("already in a group");
    if (st.pendingKP === undefined) throw new RequestError("no pending KeyPackage: call keyPackage first");
    const msg = decodeMls(bytesOf(req.welcome, "welcome"), "welcome");
    if (msg.wireformat !== "mls_welcome") throw new RequestError(`welcome: expected mls_welcome, got ${msg.wireformat}`);
    let tree;
    if (req.ratchetTree !== undefined && req.ratchetTree !== null) {
      const tb = bytesOf(req.ratchetTree, "ratchetTree");
      const res = decodeRatchetTree(tb, 0);
      if (res === undefined) throw new RequestError("ratchetTree: cannot decode");
      if (res[1] !== tb.length) throw new RequestError("ratchetTree: trailing bytes");
      tree = res[0];
    }
    const { publicPackage, privatePackage } = st.pendingKP;
    st.group = await joinGroup(msg.welcome, publicPackage, privatePackage, emptyPskIndex, st.cs, tree);
    st.pendingKP = undefined;
    return { ...epochInfo(st.group), ownLeaf: st.group.privatePath.leafIndex };
  },

  async commit(req) {
    needGroup();
    const removeLeaves = req.removeLeaves ?? [];
    if (!Array.isArray(removeLeaves)) throw new RequestError("field removeLeaves: expected an array");
    // ts-mls decides on the UpdatePath itself: present for an empty commit and for any commit with
    // Remove or Update proposals. "update" therefore changes nothing; it is accepted for the
    // protocol's sake (an empty commit is the path commit).
    reqBool(req, "update", true);
    const proposals = removeLeaves.map((l, i) => ({
      proposalType: "remove",
      remove: { removed: reqUint(l, `removeLeaves[${i}]`) },
    }));
    return commitWith(proposals, {
      ratchetTreeExtension: reqBool(req, "ratchetTreeExtension", false),
      wireFormat: reqWireFormat(req, "private"),
    });
  },

  async propose(req) {
    needGroup();
    const wireFormat = reqWireFormat(req, "private");
    let proposal;
    if (req.type === "add") {
      const msg = decodeMls(bytesOf(req.keyPackage, "keyPackage"), "keyPackage");
      if (msg.wireformat !== "mls_key_package") throw new RequestError("keyPackage: expected mls_key_package");
      proposal = { proposalType: "add", add: { keyPackage: msg.keyPackage } };
    } else if (req.type === "remove") {
      proposal = { proposalType: "remove", remove: { removed: reqUint(req.leaf, "leaf") } };
    } else {
      throw new RequestError(`field type: expected "add" or "remove", got ${JSON.stringify(req.type)}`);
    }
    const r = await createProposal(st.group, wireFormat === "public", proposal, st.cs);
    st.group = r.newState;
    return { message: hexOf(encodeMlsMessage(r.message)) };
  },

  async process(req) {
    needGroup();
    const msg = decodeMls(bytesOf(req.message, "message"), "message");
    let contentType;
    if (msg.wireformat === "mls_public_message") contentType = msg.publicMessage.content.contentType;
    else if (msg.wireformat === "mls_private_message") contentType = msg.privateMessage.contentType;
    else throw new RequestError(`message: expected a PublicMessage or PrivateMessage, got ${msg.wireformat}`);
    const res = await processMessage(msg, st.group, makePskIndex(st.group, {}), acceptAll, st.cs);
    st.group = res.newState;
    if (res.kind === "applicationMessage") {
      return { kind: "application", plaintext: hexOf(res.message), ...epochInfo(st.group) };
    }
    if (res.actionTaken !== "accept") throw new RequestError(`ts-mls did not accept the ${contentType}`);
    return { kind: contentType, ...epochInfo(st.group), state: activeState(st.group) };
  },

  async encrypt(req) {
    needGroup();
    const pt = bytesOf(req.plaintext, "plaintext");
    const r = await createApplicationMessage(st.group, pt, st.cs);
    st.group = r.newState;
    return { message: hexOf(mlsMsg({ wireformat: "mls_private_message", privateMessage: r.privateMessage })) };
  },

  async export(req) {
    needGroup();
    if (typeof req.label !== "string") throw new RequestError("field label: expected a string");
    const length = reqUint(req.length, "length");
    const ctx = bytesOf(req.context ?? "", "context");
    const secret = await mlsExporter(st.group.keySchedule.exporterSecret, req.label, ctx, length, st.cs);
    return { secret: hexOf(secret) };
  },

  async state() {
    needGroup();
    const g = st.group;
    return {
      ...epochInfo(g),
      groupId: hexOf(g.groupContext.groupId),
      suite: st.suite,
      ownLeaf: g.privatePath.leafIndex,
      members: members(g),
      ratchetTree: treeHex(g),
      treeHash: hexOf(g.groupContext.treeHash),
      state: activeState(g),
    };
  },
};

async function commitWith(proposals, { ratchetTreeExtension, wireFormat }) {
  const r = await createCommit(
    { state: st.group, cipherSuite: st.cs },
    { extraProposals: proposals, ratchetTreeExtension, wireAsPublicMessage: wireFormat === "public" },
  );
  st.group = r.newState;
  const out = {
    commit: hexOf(encodeMlsMessage(r.commit)),
    ratchetTree: treeHex(st.group),
    ...epochInfo(st.group),
    state: activeState(st.group),
  };
  if (r.welcome !== undefined) out.welcome = hexOf(mlsMsg({ wireformat: "mls_welcome", welcome: r.welcome }));
  return out;
}

// ---------- main loop ----------

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

async function handle(line) {
  if (line.trim() === "") return;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    reply({ id: null, ok: false, error: `bad JSON: ${e.message}` });
    return;
  }
  const id = req !== null && typeof req === "object" && "id" in req ? req.id : null;
  if (req === null || typeof req !== "object" || Array.isArray(req)) {
    reply({ id, ok: false, error: "request must be a JSON object" });
    return;
  }
  const op = Object.hasOwn(ops, req.op) ? ops[req.op] : undefined;
  if (op === undefined) {
    reply({ id, ok: false, error: `unknown op ${JSON.stringify(req.op)}` });
    return;
  }
  try {
    const res = await op(req);
    reply({ id, ok: true, ...res });
  } catch (e) {
    const msg = e instanceof RequestError ? e.message : `${e?.name ?? "Error"}: ${e?.message ?? String(e)}`;
    if (!(e instanceof RequestError)) log(`op ${req.op} failed:`, e?.stack ?? e);
    reply({ id, ok: false, error: msg });
  }
}

process.on("unhandledRejection", (e) => log("unhandled rejection:", e?.stack ?? e));
process.on("uncaughtException", (e) => log("uncaught exception:", e?.stack ?? e));

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
let chain = Promise.resolve();
rl.on("line", (line) => {
  chain = chain.then(() => handle(line));
});
rl.on("close", () => {
  chain.then(() => process.exit(0));
});
log(`ready (node ${process.version})`);
