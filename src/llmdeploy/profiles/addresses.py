"""The address a deployment's port is published on (``server.host``): checked, normalised."""

from __future__ import annotations

import ipaddress


def host_address(value: str) -> str:
    """The canonical form of a publish address, or ValueError saying what is accepted.

    Accepted: an IPv4 address (``127.0.0.1``), an IPv6 address with or without brackets
    (``::1``, ``[::1]``; stored without brackets, compressed), and ``localhost`` (stored as
    ``127.0.0.1``: container engines take an IP address, not a host name). ``0.0.0.0`` and
    ``::`` publish on every interface; they are accepted because a profile says so explicitly.
    """
    text = value.strip()
    if text.lower() == "localhost":
        return "127.0.0.1"
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if "%" in bare:
        raise ValueError(
            f"{value!r}: an IPv6 zone (%interface) cannot be published on; use the address alone"
        )
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        raise ValueError(
            f"not an IP address: {value!r} (use an IPv4 or IPv6 address such as 127.0.0.1 "
            "or ::1, or localhost; 0.0.0.0 or :: publishes on every interface)"
        ) from None
    if bare is not text and address.version == 4:
        raise ValueError(f"{value!r}: brackets are for IPv6 addresses; write {bare}")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"  # keep the IPv4 part readable
    return address.compressed
