"""The seam under every raw probe: send one crafted TCP SYN, get back what answered it.

Packets are built with scapy and sent through a raw IPv4 socket (IP_HDRINCL), so TTL, DF and
size are ours. Answers are read from raw TCP and ICMP sockets, which see packets after the
host's own firewall, like any socket of the host would, and are parsed at fixed offsets.
Every packet gets its own source port, reserved by binding a TCP socket that never listens:
the kernel answers the peer's SYN-ACK with a RST, so no half-open connection is left behind,
and no answer can be matched to the wrong probe. Needs CAP_NET_RAW; IPv4 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from netcheck.model.evidence import Reply, ReplyKind

IP_MTU = 14  # linux/in.h: the path MTU of a connected socket
MSG_PROBE = 0x10  # linux: do not send, only check (here: against the interface MTU)
IP_MTU_DISCOVER, IP_PMTUDISC_PROBE = 10, 3  # linux/in.h
SO_TIMESTAMPNS = 35  # asm-generic/socket.h: the kernel stamps each packet on arrival
MIN_SIZE = 40  # an IPv4 header and a TCP header without options

Key = tuple[str, int, int]  # (peer address, peer port, our source port)
Pace = Callable[[], Awaitable[None]]


class RawNet(Protocol):
    async def syn(
        self, address: str, port: int, *, timeout: float, ttl: int = 64, size: int = MIN_SIZE
    ) -> Reply: ...

    def local_mtu(self, address: str) -> int: ...

    def close(self) -> None: ...


_UNREACH_CODES = {
    0: ReplyKind.NET_UNREACHABLE,
    1: ReplyKind.HOST_UNREACHABLE,
    3: ReplyKind.PORT_UNREACHABLE,
    4: ReplyKind.FRAG_NEEDED,
    6: ReplyKind.NET_UNREACHABLE,
    7: ReplyKind.HOST_UNREACHABLE,
    9: ReplyKind.PROHIBITED,
    10: ReplyKind.PROHIBITED,
    11: ReplyKind.NET_UNREACHABLE,
    12: ReplyKind.HOST_UNREACHABLE,
    13: ReplyKind.PROHIBITED,
}


def source_for(address: str) -> str:
    """The address the kernel would send from towards address (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((address, 9))
        return str(s.getsockname()[0])


def open_raw(pace: Pace | None = None) -> RawSockets | None:
    """Raw sockets when the process has CAP_NET_RAW, else None (the agent reports it)."""
    try:
        return RawSockets(pace)
    except PermissionError:
        return None


class RawSockets:
    def __init__(self, pace: Pace | None = None) -> None:
        self._pace = pace
        self._send = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        try:
            self._tcp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
            self._icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        except BaseException:
            self._send.close()
            raise
        for s in (self._send, self._tcp, self._icmp):
            s.setblocking(False)
        # Bounded by the interface MTU only: a path MTU the kernel cached from an earlier
        # "fragmentation needed" must not stop the DF probes that measure it again.
        self._send.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
        # A raw socket gets a copy of every TCP (ICMP) packet of the host, Cassandra's own
        # traffic and other agents' probes of us included. Unfiltered, that piles up between
        # probes (megabytes seen in the lab), and the answers to a new probe wait behind it
        # past their timeout: a loaded host then "loses" the answers that came first. The
        # kernel keeps only what can answer a probe: TCP RST or SYN+ACK to an ephemeral port,
        # ICMP unreachable and time exceeded.
        _attach_filter(self._tcp, _tcp_answers(ephemeral_ports()))
        _attach_filter(self._icmp, _ICMP_ERRORS)
        for s in (self._tcp, self._icmp):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            # round trips from the kernel's arrival stamp, not from when the loop got to it
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # scapy's first packet pays its import (0.15 s, more under load): paid when the agent
        # starts, not by the first probe of a run
        _build("127.0.0.1", "127.0.0.1", 1, 1, 64, MIN_SIZE)
        self._waiters: dict[Key, tuple[asyncio.Future[Reply], int]] = {}
        self._reading = False

    def close(self) -> None:
        self._stop_reading()
        for s in (self._send, self._tcp, self._icmp):
            s.close()
        for fut, _ in self._waiters.values():
            fut.cancel()
        self._waiters.clear()

    def local_mtu(self, address: str) -> int:
        """The MTU of the interface towards address (no packet leaves: MSG_PROBE)."""
        lo, hi = 68, 65535
        while lo < hi:
            mid = (lo + hi + 1) // 2
            try:
                self._send.sendto(bytes(mid), MSG_PROBE, (address, 0))
                lo = mid
            except OSError as exc:
                if exc.errno != errno.EMSGSIZE:
                    return 0
                hi = mid - 1
        return lo

    async def syn(
        self, address: str, port: int, *, timeout: float, ttl: int = 64, size: int = MIN_SIZE
    ) -> Reply:
        try:
            src = source_for(address)
        except OSError:
            return Reply(kind=ReplyKind.NO_ROUTE)
        # A bound, never-listening TCP socket reserves the source port for this one packet.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as reserve:
            reserve.bind((src, 0))
            sport = int(reserve.getsockname()[1])
            packet = _build(src, address, sport, port, ttl, size)
            key = (address, port, sport)
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[Reply] = loop.create_future()
            if self._pace is not None:
                await self._pace()
            sent = time.time_ns()
            self._waiters[key] = (fut, sent)
            self._start_reading()
            try:
                try:
                    self._send.sendto(packet, (address, 0))
                except OSError as exc:
                    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                        return Reply(kind=ReplyKind.NO_ROUTE)
                    if exc.errno in (errno.EPERM, errno.EACCES):  # our own OUTPUT firewall
                        return Reply(kind=ReplyKind.PROHIBITED, source=src)
                    if exc.errno == errno.EMSGSIZE:  # larger than our own interface
                        return Reply(kind=ReplyKind.FRAG_NEEDED, source=src)
                    raise
                try:
                    return await asyncio.wait_for(fut, timeout)
                except TimeoutError:
                    return Reply(kind=ReplyKind.NONE)
            finally:
                self._waiters.pop(key, None)
                if not self._waiters:
                    self._stop_reading()

    def _start_reading(self) -> None:
        if not self._reading:
            # what queued while nobody waited cannot answer a packet not yet sent
            for sock in (self._tcp, self._icmp):
                _discard_queued(sock)
            loop = asyncio.get_running_loop()
            loop.add_reader(self._tcp.fileno(), self._drain, self._tcp, self._on_tcp)
            loop.add_reader(self._icmp.fileno(), self._drain, self._icmp, self._on_icmp)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
                loop.remove_reader(self._tcp.fileno())
                loop.remove_reader(self._icmp.fileno())
            self._reading = False

    def _drain(self, sock: socket.socket, handle: Callable[[bytes, int], None]) -> None:
        for _ in range(256):
            try:
                data, ancillary, _, _ = sock.recvmsg(65535, 64)
            except OSError:  # nothing more to read (or an error queued by an ICMP)
                return
            arrived = time.time_ns()
            for level, kind, stamp in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(stamp) >= 16:
                    sec, nsec = struct.unpack_from("qq", stamp)
                    arrived = sec * 1_000_000_000 + nsec
            handle(data, arrived)

    def _deliver(self, key: Key, now: int, reply: Callable[[float], Reply]) -> None:
        waiting = self._waiters.get(key)
        if waiting is None:
            return
        fut, sent = waiting
        if not fut.done():
            fut.set_result(reply(max(0, now - sent) / 1e6))

    def _on_tcp(self, data: bytes, now: int) -> None:
        if len(data) < 40:
            return
        ihl = (data[0] & 0x0F) * 4
        peer = socket.inet_ntoa(data[12:16])
        peer_port, our_port = struct.unpack_from("!HH", data, ihl)
        key = (peer, peer_port, our_port)
        if key not in self._waiters:
            return
        flags = data[ihl + 13]
        if flags & 0x04:
            kind = ReplyKind.RST
        elif flags & 0x12 == 0x12:
            kind = ReplyKind.SYN_ACK
        else:
            return
        ttl = data[8]
        self._deliver(key, now, lambda rtt: Reply(kind=kind, source=peer, ttl=ttl, rtt_ms=rtt))

    def _on_icmp(self, data: bytes, now: int) -> None:
        ihl = (data[0] & 0x0F) * 4 if data else 0
        inner = ihl + 8  # the ICMP error quotes our IP header and the first 8 bytes of TCP
        if len(data) < inner + 20 or data[ihl] not in (3, 11):
            return
        inner_ihl = (data[inner] & 0x0F) * 4
        if data[inner + 9] != socket.IPPROTO_TCP or len(data) < inner + inner_ihl + 4:
            return
        peer = socket.inet_ntoa(data[inner + 16 : inner + 20])
        our_port, peer_port = struct.unpack_from("!HH", data, inner + inner_ihl)
        key = (peer, peer_port, our_port)
        if key not in self._waiters:
            return
        icmp_type, code = data[ihl], data[ihl + 1]
        if icmp_type == 11:
            kind = ReplyKind.TIME_EXCEEDED
        else:
            kind = _UNREACH_CODES.get(code, ReplyKind.HOST_UNREACHABLE)
        # RFC 1191: the next-hop MTU sits in the last two bytes of the ICMP header
        mtu = struct.unpack_from("!H", data, ihl + 6)[0] if kind is ReplyKind.FRAG_NEEDED else 0
        source, ttl = socket.inet_ntoa(data[12:16]), data[8]
        self._deliver(
            key,
            now,
            lambda rtt: Reply(kind=kind, source=source, ttl=ttl, rtt_ms=rtt, mtu=mtu),
        )


# Classic BPF, written out because it is a few instructions and the alternatives need
# tcpdump at run time (scapy's compile_filter) or a C toolchain. Raw IPv4 sockets see the
# packet from its IP header; `ldxb 4*([0]&0xf)` puts the IP header length in X.
SO_ATTACH_FILTER = 26  # asm-generic/socket.h
_LDXB_MSH, _LDB_IND, _LDH_IND = 0xB1, 0x50, 0x48
_JSET, _JEQ, _JGE, _JGT, _AND, _RET = 0x45, 0x15, 0x35, 0x25, 0x54, 0x06
BpfInsn = tuple[int, int, int, int]  # (code, jump if true, jump if false, k)
_ICMP_ERRORS: tuple[BpfInsn, ...] = (
    (_LDXB_MSH, 0, 0, 0),
    (_LDB_IND, 0, 0, 0),  # ICMP type
    (_JEQ, 2, 0, 3),  # destination unreachable: keep
    (_JEQ, 1, 0, 11),  # time exceeded: keep
    (_RET, 0, 0, 0),
    (_RET, 0, 0, 0xFFFF),
)


def _tcp_answers(ports: tuple[int, int]) -> tuple[BpfInsn, ...]:
    """RST or SYN+ACK to a port in the ephemeral range (where our probes' source ports are)."""
    lo, hi = ports
    return (
        (_LDXB_MSH, 0, 0, 0),
        (_LDH_IND, 0, 0, 2),  # TCP destination port
        (_JGE, 0, 5, lo),
        (_JGT, 4, 0, hi),
        (_LDB_IND, 0, 0, 13),  # TCP flags
        (_JSET, 3, 0, 0x04),  # RST: keep
        (_AND, 0, 0, 0x12),
        (_JEQ, 1, 0, 0x12),  # SYN and ACK: keep
        (_RET, 0, 0, 0),
        (_RET, 0, 0, 0xFFFF),
    )


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel binds our probes' source ports from (this network namespace)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 1024, 65535


class _SockFilter(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_uint16), ("filter", ctypes.c_void_p))


def _attach_filter(sock: socket.socket, program: tuple[BpfInsn, ...]) -> None:
    insns = (_SockFilter * len(program))(*(_SockFilter(*i) for i in program))
    prog = _SockFprog(len(program), ctypes.cast(insns, ctypes.c_void_p))
    # the kernel copies the program during setsockopt; insns may go after it
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(prog))


def _discard_queued(sock: socket.socket, most: int = 100_000) -> None:
    for _ in range(most):
        try:
            sock.recv(65535)
        except BlockingIOError:  # the queue is empty
            return
        except OSError:  # an error an ICMP queued: taken off with this recv, go on
            continue


def _build(src: str, dst: str, sport: int, dport: int, ttl: int, size: int) -> bytes:
    from scapy.layers.inet import IP, TCP
    from scapy.packet import Raw

    pkt = IP(src=src, dst=dst, ttl=ttl, flags="DF", id=random.randrange(1, 65536)) / TCP(
        sport=sport, dport=dport, flags="S", seq=random.randrange(1 << 32), window=1024
    )
    pad = max(0, size - MIN_SIZE)
    if pad:
        pkt = pkt / Raw(load=bytes(pad))
    return bytes(pkt)
