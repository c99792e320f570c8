"""The aiortc peer: signaling client, WebRTC plumbing, sender and receiver."""
