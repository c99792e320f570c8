"""What the CLI says to its user about how a transfer ended, by code (docs/protocol.md §12
and §14.2). The codes are the contract; the sentences are for people and may change."""

from __future__ import annotations

from ..transfer import errors
from ..transfer import receiver_machine as outcome


def terminal_safe(text: str) -> str:
    """Text from a peer, shown on a terminal: control characters (escape sequences, a
    carriage return that would overwrite a line, bidirectional overrides) escaped."""
    return "".join(
        char if char.isprintable() or char == " " else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


NO_PATH_SENTENCE = ("Could not connect: there is no direct path between these networks, "
                    "and the server offers no relay (TURN).")
RELAY_FAILED_SENTENCE = ("Could not connect: there is no direct path between these networks, "
                         "and the relay (TURN) did not answer.")


def receiver_failed(code: str | None, detail: str | None) -> str:
    """The sender's line about a receiver that failed."""
    if code == outcome.NO_PATH:
        return NO_PATH_SENTENCE
    if code == outcome.RELAY_FAILED:
        return RELAY_FAILED_SENTENCE
    return terminal_safe(detail or code or "failed")


def receive_ended(code: str, detail: str = "", remote: bool = False) -> str:
    """The sentence for a receive that ended with `code` (not `done`)."""
    detail = terminal_safe(detail)
    sentences = {
        outcome.WRONG_PASSWORD: "Wrong password.",
        outcome.WRONG_LINK: "The sender refused this link: it is wrong or was altered.",
        outcome.PASSWORD_DOWNGRADE: "This link needs a password, but the sender did not ask for one: "
                                    "the connection may have been tampered with.",
        errors.AUTH_FAILED: "Could not verify the sender: the connection may have been tampered with.",
        outcome.SENDER_GONE: "The sender is not online (it did not come within a minute). "
                             "Run the same command again when it is.",
        outcome.NO_PATH: NO_PATH_SENTENCE + (f" ({detail})" if detail else "")
                         + " Try from another network, or ask whoever runs the server to add a relay.",
        outcome.RELAY_FAILED: RELAY_FAILED_SENTENCE + " Try again later, or from another network.",
        outcome.GAVE_UP: "The connection to the sender was lost and did not come back in time. "
                         "Run the same command again to continue where it stopped.",
        outcome.ROOM_CLOSED: detail or "The sender closed this transfer.",
        outcome.DECLINED: "Declined; nothing was saved.",
        errors.CANCELLED: "The sender stopped the transfer." if remote else "Stopped.",
        errors.DISK_FULL: ("The sender reports no space left." if remote
                           else f"Not enough disk space: {detail}"),
        errors.STORAGE_ERROR: f"Cannot save the files: {detail}",
        errors.SOURCE_ERROR: f"The sender cannot read the files any more: {detail}",
        errors.INTEGRITY: f"The files did not arrive intact: {detail}",
        errors.BAD_VERSION: ("The sender uses a different version of peerbeam; "
                             "both sides need an up-to-date one."),
        errors.BUSY: "The sender is serving too many receivers right now. Try again later.",
    }
    sentence = sentences.get(code)
    if sentence is not None:
        return sentence
    who = "the sender reported" if remote else "this side found"
    return f"The transfer failed ({code}: {who} {detail or 'no detail'})."
