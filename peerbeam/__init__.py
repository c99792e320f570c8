"""peerbeam: send very large files directly between devices over WebRTC."""

__version__ = "0.1.0"
