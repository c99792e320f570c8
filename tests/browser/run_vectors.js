// Runs every section of docs/protocol-vectors.json through the web client's protocol
// modules and returns what each produced; test_protocol_js.py compares (page.evaluate).
async (v) => {
  const m = (name) => import(`/js/protocol/${name}.js`);
  const [link, auth, frames, chunks, codec, messages, filenames] = await Promise.all(
    ["link", "auth", "frames", "chunks", "codec", "messages", "filenames"].map(m));
  const hex = codec.hexEncode;
  const fromHex = (h) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
  const code = (fn) => { try { fn(); return null; } catch (e) { return e.code ?? `threw ${e}`; } };
  const out = {};

  out.linksValid = v.links.valid.map((c) => {
    const l = link.parseLink(c.url);
    const again = link.parseLink(link.makeLink(l.baseUrl, l.room, l.key, l.password));
    return [l.baseUrl, l.room, hex(l.key), l.password,
      again.room === l.room && hex(again.key) === hex(l.key) && again.password === l.password];
  });
  out.linksInvalid = v.links.invalid.map((c) => code(() => link.parseLink(c.url)));
  out.linksMake = v.links.make.map((c) => link.makeLink(c.base_url, c.room, fromHex(c.key_hex), c.password));

  out.authKeys = [];
  for (const c of v.auth_keys) {
    const key = fromHex(c.link_key_hex);
    const r = { auth: hex(await auth.deriveAuthKey(key, c.room, c.password, c.iterations ?? 1)) };
    if (c.password !== null) {
      r.nfc = hex(auth.normalizePassword(c.password));
      r.pbkdf2 = hex(await auth.stretchPassword(key, c.room, c.password, c.iterations));
    }
    r.hkdf = hex(await auth.hkdfSha256(fromHex(c.hkdf_ikm_hex), fromHex(c.hkdf_salt_hex), fromHex(c.hkdf_info_hex)));
    out.authKeys.push(r);
  }

  out.sdpValid = v.sdp_fingerprints.valid.map((c) =>
    [auth.sdpFingerprintList(c.sdp), auth.sdpFingerprints(c.sdp), frames.sdpMaxMessageSize(c.sdp)]);
  out.sdpInvalid = v.sdp_fingerprints.invalid.map((c) => code(() => auth.sdpFingerprints(c.sdp)));

  out.macs = [];
  for (const c of v.auth.cases) {
    const key = fromHex(c.auth_key_hex);
    const handshake = new auth.Handshake({
      room: c.room, senderFingerprints: c.sender_fingerprints, receiverFingerprints: c.receiver_fingerprints,
      senderNonce: codec.b64urlDecode(c.sender_nonce_b64url, 32), receiverNonce: codec.b64urlDecode(c.receiver_nonce_b64url, 32),
    });
    const r = {};
    for (const role of ["receiver", "sender"]) {
      const mac = await handshake.mac(key, role);
      const wrong = mac.slice(); wrong[0] ^= 1;
      r[role] = [hex(handshake.transcript(role)), hex(mac), codec.b64urlEncode(mac),
        await handshake.verify(key, role, mac), await handshake.verify(key, role, wrong)];
    }
    out.macs.push(r);
  }
  out.authMessages = Object.fromEntries(Object.entries(v.auth.messages).map(([k, obj]) =>
    [k, messages.toJson(messages.parseMessage(JSON.stringify(obj)))]));

  out.framesValid = v.frames.valid.map((c) => {
    const frame = frames.encodePiece(c.file, c.chunk, c.offset, fromHex(c.payload_hex));
    const p = frames.decodePiece(frame.buffer);
    return [hex(frame), p.file, p.chunk, p.offset, hex(p.payload)];
  });
  out.framesInvalid = v.frames.invalid.map((c) => code(() => frames.decodePiece(fromHex(c.frame_hex).buffer)));
  const big = new Uint8Array(16 + v.frames.oversize.payload_size);
  big.set(frames.encodePiece(0, 0, 0, new Uint8Array([120])).subarray(0, 16));
  out.framesOversize = code(() => frames.decodePiece(big.buffer));
  out.pieceLimits = v.frames.piece_payload_limit.map((c) => frames.piecePayloadLimit(c.max_message_size));

  out.digests = [];
  for (const c of v.digests) {
    let data;
    if (c.data_hex !== undefined) data = fromHex(c.data_hex);
    else { data = new Uint8Array(c.size); for (let i = 0; i < c.size; i++) data[i] = ((i * 31) + (i >> 16)) & 0xff; }
    const ds = [];
    for (let at = 0; at < data.length; at += c.chunk_size) ds.push(await chunks.chunkDigest(data.subarray(at, at + c.chunk_size)));
    const prefixes = [];
    for (const p of c.prefixes) prefixes.push(hex(await chunks.fileDigest(ds.slice(0, Math.ceil(p.offset / c.chunk_size)))));
    // Reassemble through frames and the receiving page's chunk buffer, as a receiver would.
    let assembled = null;
    if (c.chunk_size === 1048576) {
      const buffer = new chunks.ChunkBuffer();
      const again = [];
      for (let i = 0; i < ds.length; i++) {
        const chunk = data.subarray(i * c.chunk_size, (i + 1) * c.chunk_size);
        for (let off = 0; off < chunk.length; off += 262128) {
          const p = frames.decodePiece(frames.encodePiece(0, i, off, chunk.subarray(off, off + 262128)).buffer);
          buffer.put(p.offset, p.payload, chunk.length);
        }
        const received = buffer.take();
        again.push(await chunks.chunkDigest(received));
        buffer.recycle(received);
      }
      assembled = hex(chunks.fileDigest(again));
    }
    out.digests.push([ds.map(hex), hex(await chunks.fileDigest(ds)), prefixes, assembled]);
  }

  out.sanitize = v.sanitize_filename.map((c) => [filenames.sanitizeFilename(c.input), filenames.sanitizeFilename(c.output)]);
  out.numbered = v.numbered_filename.map((c) => filenames.numberedFilename(c.name, c.number));

  out.messagesValid = v.messages.valid.map((t) => messages.toJson(messages.parseMessage(t)));
  out.messagesInvalid = v.messages.invalid.map((c) => code(() => messages.parseMessage(c.json)));
  const head = '{"t":"ping","pad":"', tail = '"}';
  const text = head + "x".repeat(v.messages.too_large.size - head.length - tail.length) + tail;
  out.tooLarge = [code(() => messages.parseMessage(text)),
    messages.parseMessage(text.slice(0, -(v.messages.too_large.size - 65536) - 2) + tail).t];
  return out;
}
