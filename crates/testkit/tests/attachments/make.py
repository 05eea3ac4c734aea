#!/usr/bin/env python3
"""Writes the attachment corpus: every NN-name.eml and its golden NN-name.json.

Run from anywhere: `python3 make.py`. The output is deterministic (fixed dates,
fixed "random" bytes from SHA-256 in counter mode), so a second run rewrites
the same files byte for byte. Standard library only.

Each message is built from a small tree (Leaf, Multi, Embedded) whose header
lines and encoded bodies are written out by hand, byte for byte, so that
continuations, bad media types and a missing closing boundary stay exactly as
written. Every leaf that is an attachment carries the original file (`data`)
and the file name it should decode to (`name`). The golden values come from
that tree and the rules in README.md; then the written .eml is parsed again
with Python's `email` package and every id, decoded byte string and content id
is asserted equal to the golden one. Where Python's names or media types
differ from the rules (on purpose, see README.md), the difference is printed
and not asserted.
"""

import base64
import binascii
import email
import email.policy
import hashlib
import json
import os
import re
import struct
import sys
import unicodedata
import zipfile
import zlib
import io

HERE = os.path.dirname(os.path.abspath(__file__))
CRLF = b"\r\n"

# ---------------------------------------------------------------------------
# Files used as attachment contents.


def prng(seed, n):
    """n deterministic pseudo-random bytes (SHA-256 in counter mode)."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed.encode() + i.to_bytes(4, "big")).digest()
        i += 1
    return out[:n]


def pdf(text):
    """A tiny valid one-page PDF with a correct xref table."""
    content = b"BT /F1 12 Tf 10 50 Td (" + text.encode("latin-1") + b") Tj ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 100] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += str(i).encode() + b" 0 obj\n" + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 " + str(len(objs) + 1).encode() + b"\n0000000000 65535 f \n"
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size " + str(len(objs) + 1).encode() + b" /Root 1 0 R >>\n"
    out += b"startxref\n" + str(xref).encode() + b"\n%%EOF\n"
    return out


def adler32(data):
    a, b = 1, 0
    for byte in data:
        a = (a + byte) % 65521
        b = (b + a) % 65521
    return (b << 16) | a


def png(width, height, pixel):
    """A valid RGB PNG; the zlib stream uses stored blocks, so it does not
    depend on the zlib version."""
    raw = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height)
    )
    z = b"\x78\x01"
    for i in range(0, len(raw), 65535):
        chunk = raw[i : i + 65535]
        final = 1 if i + 65535 >= len(raw) else 0
        z += bytes([final]) + struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF) + chunk
    z += struct.pack(">I", adler32(raw))
    assert zlib.decompress(z) == raw

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", binascii.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", z) + chunk(b"IEND", b"")


# The classic transparent 1x1 GIF.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def zip_one(name, content):
    """A valid one-entry stored ZIP (what a .docx is wrapped in)."""
    name = name.encode()
    crc = binascii.crc32(content)
    t, d = (9 << 11) | (30 << 5), ((2024 - 1980) << 9) | (6 << 5) | 4
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, t, d, crc, len(content), len(content), len(name), 0
    )
    local += name + content
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50, 20, 20, 0, 0, t, d, crc, len(content), len(content), len(name), 0, 0, 0, 0, 0, 0,
    ) + name
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local), 0)
    out = local + central + eocd
    assert zipfile.ZipFile(io.BytesIO(out)).read(name.decode()) == content
    return out


PNG4 = png(4, 4, lambda x, y: (x * 60, y * 60, 200))
PNG1 = png(1, 1, lambda x, y: (255, 0, 0))
PNG32 = png(32, 32, lambda x, y: ((x * 8) % 256, (y * 8) % 256, (x * y) % 256))
ALL_BYTES = bytes(range(256))

# ---------------------------------------------------------------------------
# Transfer encodings, written out by hand.


def b64(data, width=76, nl=CRLF):
    text = base64.b64encode(data)
    return b"".join(text[i : i + width] + nl for i in range(0, len(text), width))


def b64_odd(data, lengths=(57, 13, 70, 1, 33, 76, 5, 42)):
    """base64 in lines of uneven lengths, none a multiple of 4 for the most part."""
    text = base64.b64encode(data)
    out, i, k = b"", 0, 0
    while i < len(text):
        n = lengths[k % len(lengths)]
        out += text[i : i + n] + CRLF
        i, k = i + n, k + 1
    return out


def b64_one(data):
    return base64.b64encode(data) + CRLF


def uu(name, data):
    lines = [b"begin 644 " + name.encode()]
    for i in range(0, len(data), 45):
        lines.append(binascii.b2a_uu(data[i : i + 45], backtick=True).rstrip(b"\n"))
    lines += [b"`", b"end"]
    return CRLF.join(lines) + CRLF


def crlf(text):
    """Text written with \\n in this file, as CRLF bytes."""
    return text.replace("\n", "\r\n").encode("utf-8")


# ---------------------------------------------------------------------------
# Message trees.


class Leaf:
    def __init__(self, headers, body, data=None, name=None, is_body=False):
        self.headers, self.body, self.data, self.name, self.is_body = headers, body, data, name, is_body
        assert is_body or data is not None

    def named(self, name):
        self.name = name
        return self


class Multi:
    def __init__(self, headers, boundary, parts, preamble=b"", epilogue=b"", close=True):
        self.headers, self.boundary, self.parts = headers, boundary.encode(), parts
        self.preamble, self.epilogue, self.close = preamble, epilogue, close
        self.body = b""
        if preamble:
            self.body += preamble + CRLF
        for i, p in enumerate(parts):
            self.body += b"--" + self.boundary + CRLF + entity_bytes(p)
            if close or i + 1 < len(parts):
                self.body += CRLF
        if close:
            self.body += b"--" + self.boundary + b"--" + CRLF + epilogue


class Embedded:
    """A message/rfc822 part; `inner` is a Message, written 7bit or base64."""

    def __init__(self, headers, inner, encoding="7bit", name=None):
        self.headers, self.inner, self.name = headers, inner, name
        self.data = inner.bytes()
        self.body = self.data if encoding == "7bit" else b64(self.data)


class Message:
    def __init__(self, headers, entity):
        self.headers, self.entity = headers, entity

    def bytes(self):
        return header_bytes(self.headers + self.entity.headers) + CRLF + self.entity.body


def header_bytes(headers):
    """Header lines; a "\\n" inside one is a fold (written as CRLF)."""
    return b"".join(h.replace("\n", "\r\n").encode("utf-8") + CRLF for h in headers)


def entity_bytes(e):
    return header_bytes(e.headers) + CRLF + e.body


def envelope(n, subject, frm="Alice Example <alice@example.com>", to="Bob Builder <bob@example.net>", extra=()):
    return [
        f"From: {frm}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: Tue, 04 Jun 2024 09:{n:02d}:17 +0200",
        f"Message-ID: <2024060409{n:02d}17.{n * 7919:06d}@mail.example.com>",
        *extra,
        "MIME-Version: 1.0",
    ]


def mixed(boundary, parts, kind="mixed", extra="", **kw):
    return Multi([f'Content-Type: multipart/{kind};{extra}\n boundary="{boundary}"'], boundary, parts, **kw)


def text(s, cte="7bit", charset="utf-8"):
    return Leaf([f"Content-Type: text/plain; charset={charset}", f"Content-Transfer-Encoding: {cte}"], crlf(s), is_body=True)


def html(s):
    return Leaf(["Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: 7bit"], crlf(s), is_body=True)


def alternative(boundary, plain, rich):
    return mixed(boundary, [text(plain), html(rich)], kind="alternative")


PREAMBLE = b"This is a multi-part message in MIME format."

# ---------------------------------------------------------------------------
# The golden values (the rules of README.md).

RESTRICTED = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def header(headers, name):
    for h in headers:
        key, _, value = h.partition(":")
        if key.strip().lower() == name:
            return value.replace("\n", "").strip()
    return None


def download_name(name):
    if name is None:
        return "attachment"
    kept = "".join(
        c for c in name
        if not (ord(c) <= 0x1F or 0x7F <= ord(c) <= 0x9F or ord(c) in BIDI or c in "/\\")
    )
    start, end = 0, len(kept)
    while start < end and (kept[start] == "." or kept[start].isspace()):
        start += 1
    while end > start and (kept[end - 1] == "." or kept[end - 1].isspace()):
        end -= 1
    kept = kept[start:end]
    if len(kept.encode()) <= 200:
        return kept or "attachment"
    # A cut keeps the extension: the text from the last dot, when it is at
    # most 16 bytes (UTF-8) and has no white space.
    dot = kept.rfind(".")
    extension = kept[dot:] if dot >= 0 else ""
    if len(extension.encode()) > 16 or any(c.isspace() for c in extension):
        extension = ""
    stem = kept[: len(kept) - len(extension)]
    out = b""
    for c in stem:
        if len(out) + len(c.encode()) > 200 - len(extension.encode()):
            break
        out += c.encode()
    stem = out.decode()
    while stem and (stem[-1] == "." or stem[-1].isspace()):
        stem = stem[:-1]
    return (stem + extension) or "attachment"


def record(part, section, data, name):
    ctype = header(part.headers, "content-type")
    declared = None if ctype is None else ctype.split(";")[0].strip().lower()
    if declared is None or "/" not in declared or declared.endswith("/"):
        content_type = "application/octet-stream"
    else:
        content_type = declared
    valid = declared is not None and re.fullmatch(RESTRICTED + "/" + RESTRICTED, declared)
    cd = header(part.headers, "content-disposition")
    cid = header(part.headers, "content-id")
    if cid is not None and cid.startswith("<") and cid.endswith(">"):
        cid = cid[1:-1]
    if cd is not None:
        disposition = cd.split(";")[0].strip().lower()
    else:
        disposition = "inline" if cid is not None else "attachment"
    return {
        "id": ".".join(map(str, section)),
        "name": name,
        "contentType": content_type,
        "disposition": disposition,
        "contentId": cid,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "downloadName": download_name(name),
        "downloadType": content_type if valid else "application/octet-stream",
    }


def golden(message):
    out = []

    def visit_message(entity, section):
        visit(entity, section if isinstance(entity, Multi) else section + [1])

    def visit(e, section):
        if isinstance(e, Multi):
            for i, child in enumerate(e.parts, 1):
                visit(child, section + [i])
        elif isinstance(e, Embedded):
            out.append(record(e, section, e.data, e.name))
            visit_message(e.inner.entity, section)
        elif not e.is_body:
            out.append(record(e, section, e.data, e.name))

    visit_message(message.entity, [])
    return out


# ---------------------------------------------------------------------------
# The cross-check with Python's email package.

NOTES = []  # where Python and the rules differ, printed at the end


def python_view(case, raw):
    """(id, decoded bytes, Content-ID, compat32 parts, default-policy parts) of
    every part Python would list, walking the same way as `golden`."""
    legacy = email.message_from_bytes(raw, policy=email.policy.compat32)
    modern = email.message_from_bytes(raw, policy=email.policy.default)
    out = []

    def visit_message(old, new, section):
        visit(old, new, section if old.get_content_maintype() == "multipart" else section + [1])

    def visit(old, new, section):
        ctype = old.get_content_type()
        if old.get_content_maintype() == "multipart":
            for i, (a, b) in enumerate(zip(old.get_payload(), new.get_payload()), 1):
                visit(a, b, section + [i])
        elif ctype == "message/rfc822":
            inner_old, inner_new = old.get_payload(0), new.get_payload(0)
            cte = (old.get("content-transfer-encoding") or "7bit").strip().lower()
            data = None
            if cte == "base64":
                # Python parses the base64 text itself as the inner message
                # (no headers, all body): decode it and parse the result.
                data = base64.b64decode(inner_old.get_payload())
                inner_old = email.message_from_bytes(data, policy=email.policy.compat32)
                inner_new = email.message_from_bytes(data, policy=email.policy.default)
                NOTES.append(f"{case} {section_id(section)}: base64 message/rfc822 decoded by hand; "
                             "Python parses the base64 text as the inner message")
            out.append((section_id(section), data, old, new))
            visit_message(inner_old, inner_new, section)
        else:
            is_body = (
                ctype in ("text/plain", "text/html")
                and old.get_filename() is None
                and new.get_filename() is None
                and old.get_content_disposition() != "attachment"
            )
            if not is_body:
                out.append((section_id(section), old.get_payload(decode=True), old, new))

    visit_message(legacy, modern, [])
    return out


def section_id(section):
    return ".".join(map(str, section))


def check(case, raw, expected, tree_parts):
    seen = python_view(case, raw)
    ids = [s[0] for s in seen]
    assert ids == [e["id"] for e in expected], (case, ids, expected)
    for (sid, data, old, new), e, part in zip(seen, expected, tree_parts):
        original = part.data
        if data is None:
            # a 7bit message/rfc822: its bytes sit between the blank line
            # ending its headers and the CRLF before the next delimiter
            assert CRLF + CRLF + original + CRLF + b"--" in raw, (case, sid)
        else:
            assert data == original, (case, sid, len(data), len(original))
        assert hashlib.sha256(original).hexdigest() == e["sha256"]
        cid = old.get("content-id")
        assert (cid.strip()[1:-1] if cid else None) == e["contentId"], (case, sid)
        py_disp = old.get_content_disposition()
        if py_disp is not None:
            assert py_disp == e["disposition"], (case, sid)
        for policy, msg in (("compat32", old), ("default", new)):
            name = msg.get_filename()
            if name != e["name"]:
                NOTES.append(f"{case} {sid}: Python ({policy}) get_filename() = {name!r}, rules: {e['name']!r}")
        if old.get_content_type() != e["contentType"]:
            NOTES.append(f"{case} {sid}: Python get_content_type() = {old.get_content_type()!r}, "
                         f"rules: {e['contentType']!r}")


def leaves(message):
    """The tree parts in the order `golden` lists them."""
    out = []

    def visit(e):
        if isinstance(e, Multi):
            for c in e.parts:
                visit(c)
        elif isinstance(e, Embedded):
            out.append(e)
            visit(e.inner.entity)
        elif not e.is_body:
            out.append(e)

    visit(message.entity)
    return out


def dump_json(value):
    """JSON with readable letters, and \\u escapes for anything invisible."""
    text = json.dumps(value, ensure_ascii=False, indent=2)
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c != "\n" else c
        for c in text
    ) + "\n"


# ---------------------------------------------------------------------------
# The cases.

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def pdf_part(name_headers, data, encoder=b64):
    return Leaf(
        ["Content-Type: application/pdf", "Content-Transfer-Encoding: base64", *name_headers],
        encoder(data), data=data,
    )


@case
def base64_crlf_76():
    data = pdf("Invoice 2024-0117")
    return Message(
        envelope(1, "Invoice 2024-0117", extra=["User-Agent: Mozilla Thunderbird"]),
        mixed("------------a1b2c3d4e5f6a7b8c9d0e1f2", [
            text("Hello Bob,\n\nplease find the invoice attached.\n\nAlice\n"),
            Leaf([
                'Content-Type: application/pdf; name="invoice-2024-0117.pdf"',
                'Content-Disposition: attachment; filename="invoice-2024-0117.pdf"',
                "Content-Transfer-Encoding: base64",
            ], b64(data), data=data, name="invoice-2024-0117.pdf"),
        ], preamble=PREAMBLE),
    )


@case
def base64_lf_odd_lines():
    data = ALL_BYTES + prng("02", 700)
    # Built with CRLF, then every CRLF made LF: only base64 and ASCII text here.
    return Message(
        envelope(2, "Sensor dump (LF line ends)", extra=["X-Mailer: dumpmail 0.3"]),
        mixed("lf-boundary-02", [
            text("Raw dump attached, every byte value first.\n"),
            Leaf([
                "Content-Type: application/octet-stream",
                'Content-Disposition: attachment; filename="sensor-dump.bin"',
                "Content-Transfer-Encoding: base64",
            ], b64_odd(data), data=data, name="sensor-dump.bin"),
        ]),
    ), "lf"


@case
def base64_one_line():
    data = PNG32
    return Message(
        envelope(3, "Photo (base64 on a single line)", extra=["X-Mailer: PHPMailer 6.1.4"]),
        mixed("b1_3f6c0a4e9d2b7c815e0f", [
            text("The picture.\n"),
            Leaf([
                'Content-Type: image/png; name="photo.png"',
                "Content-Transfer-Encoding: base64",
                'Content-Disposition: attachment; filename="photo.png"',
            ], b64_one(data), data=data, name="photo.png"),
        ]),
    )


@case
def quoted_printable_csv():
    data = crlf(
        "sku,name,price,comment\n"
        "A-100,Café crème,2.50,\"with =, equals\"\n"
        "A-101,Thé vert,3.00,\"a long line that goes on and on past the seventy-six character limit of quoted-printable\"\n"
        "A-102,Brötchen,0.80,trailing space \n"
        "A-103,Tab\tseparated,1.20,€ sign\n"
    )
    body = (
        b"sku,name,price,comment\r\n"
        b"A-100,Caf=C3=A9 cr=C3=A8me,2.50,\"with =3D, equals\"\r\n"
        b"A-101,Th=C3=A9 vert,3.00,\"a long line that goes on and on past the seventy-=\r\n"
        b"six character limit of quoted-printable\"\r\n"
        b"A-102,Br=C3=B6tchen,0.80,trailing space=20\r\n"
        b"A-103,Tab=09separated,1.20,=E2=82=AC sign\r\n"
    )
    return Message(
        envelope(4, "Price list (CSV)", extra=["X-Mailer: Microsoft Outlook 16.0"]),
        mixed("----=_NextPart_000_0004_01DAB63C.5E2F4A10", [
            text("Prices attached.\n"),
            Leaf([
                'Content-Type: text/csv; charset=utf-8; name="prices.csv"',
                "Content-Transfer-Encoding: quoted-printable",
                'Content-Disposition: attachment; filename="prices.csv"',
            ], body, data=data, name="prices.csv"),
        ], preamble=PREAMBLE),
    )


@case
def quoted_printable_latin1_text():
    data = (
        "Liebe Grüße aus Köln,\n"
        "die Straße ist gesperrt. \n"
        "Ende.\n"
    ).replace("\n", "\r\n").encode("iso-8859-1")
    body = (
        b"Liebe Gr=FC=DFe aus K=F6ln,\r\n"
        b"die Stra=DFe ist ges=\r\n"
        b"perrt.=20\r\n"
        b"Ende.\r\n"
    )
    return Message(
        envelope(5, "Notiz", frm="Jörg Müller <joerg@example.de>"),
        mixed("=_qp_latin1_05", [
            text("Siehe Anhang.\n"),
            Leaf([
                'Content-Type: text/plain; charset=iso-8859-1; name="notiz.txt"',
                "Content-Transfer-Encoding: quoted-printable",
                'Content-Disposition: attachment; filename="notiz.txt"',
            ], body, data=data, name="notiz.txt"),
        ]),
    )


@case
def x_uuencode():
    data = ALL_BYTES + prng("06", 300)
    return Message(
        envelope(6, "Firmware (x-uuencode)", extra=["X-Mailer: Eudora 4.3"]),
        mixed("uu-06-boundary", [
            text("Firmware image attached, uuencoded.\n"),
            Leaf([
                'Content-Type: application/octet-stream; name="firmware.bin"',
                "Content-Transfer-Encoding: x-uuencode",
                'Content-Disposition: attachment; filename="firmware.bin"',
            ], uu("firmware.bin", data), data=data, name="firmware.bin"),
        ]),
    )


@case
def uuencode():
    data = pdf("Old scan")
    return Message(
        envelope(7, "Old scan (uuencode)", extra=["X-Mailer: Pegasus Mail for Windows (4.41)"]),
        mixed("uu-07-boundary", [
            text("Scan attached.\n"),
            Leaf([
                'Content-Type: application/pdf; name="old-scan.pdf"',
                "Content-Transfer-Encoding: uuencode",
                'Content-Disposition: attachment; filename="old-scan.pdf"',
            ], uu("old-scan.pdf", data), data=data, name="old-scan.pdf"),
        ]),
    )


@case
def sevenbit_text_file():
    data = crlf("- buy milk\n- call the plumber\n- renew passport\n")
    return Message(
        envelope(8, "Todo list"),
        mixed("7bit-08-boundary", [
            text("My list.\n"),
            Leaf([
                'Content-Type: text/plain; charset=us-ascii; name="todo.txt"',
                "Content-Transfer-Encoding: 7bit",
                'Content-Disposition: attachment; filename="todo.txt"',
            ], data, data=data, name="todo.txt"),
        ]),
    )


@case
def eightbit_latin1_text_file():
    data = "Preisliste\r\nÄpfel  1,20 €\r\nBrötchen  0,40\r\nGrüner Tee  3,00\r\nNo euro sign in latin-1: EUR\r\n"
    data = data.replace("€", "EUR").encode("iso-8859-1")
    assert any(b >= 0x80 for b in data)
    return Message(
        envelope(9, "Preisliste", frm="Jörg Müller <joerg@example.de>"),
        mixed("8bit-09-boundary", [
            text("Anbei die Preisliste.\n"),
            Leaf([
                'Content-Type: text/plain; charset=iso-8859-1; name="preisliste.txt"',
                "Content-Transfer-Encoding: 8bit",
                'Content-Disposition: inline; filename="preisliste.txt"',
            ], data, data=data, name="preisliste.txt"),
        ]),
    )


@case
def binary_all_bytes():
    data = ALL_BYTES + bytes(reversed(ALL_BYTES)) + prng("10", 200)
    assert b"\r\n--" not in data and data[-1:] not in (b"\r", b"\n")
    return Message(
        envelope(10, "All byte values (binary)"),
        mixed("binary-10-boundary", [
            text("Binary transfer encoding, every byte value.\n"),
            Leaf([
                'Content-Type: application/octet-stream; name="all-bytes.bin"',
                "Content-Transfer-Encoding: binary",
                'Content-Disposition: attachment; filename="all-bytes.bin"',
            ], data, data=data, name="all-bytes.bin"),
        ]),
    )


def pct(data):
    """RFC 2231 percent-encoding: every octet that is not an attribute-char."""
    keep = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$&+-.^_`|~"
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in data)


@case
def rfc2231_utf8():
    name = "Grüße aus Köln.pdf"
    data = pdf("Gruesse aus Koeln")
    return Message(
        envelope(11, "Postcard", extra=["User-Agent: Mutt/2.2.12"]),
        mixed("rfc2231-11", [
            text("Greetings.\n"),
            pdf_part([f"Content-Disposition: attachment; filename*=utf-8''{pct(name.encode())}"], data)
            .named(name),
        ]),
    )


@case
def rfc2231_continuations():
    name = "年度報告書 Q3-final.pdf"
    head = "年度報告書 Q3".encode()
    # 年 is E5 B9 B4, 度 is E5 BA A6: the first segment ends inside 度.
    seg0, seg1 = head[:5], head[5:]
    assert seg0 == "年".encode() + b"\xe5\xba"
    data = pdf("Annual report Q3")
    return Message(
        envelope(12, "Annual report", extra=["User-Agent: Mutt/2.2.12"]),
        mixed("rfc2231-12", [
            text("The report, see the attachment.\n"),
            pdf_part([
                "Content-Disposition: attachment;\n"
                f" filename*0*=utf-8''{pct(seg0)};\n"
                f" filename*1*={pct(seg1)};\n"
                ' filename*2="-final.pdf"'
            ], data).named(name),
        ]),
    )


@case
def rfc2231_latin1_language():
    name = "Straßenverzeichnis München.txt"
    data = crlf("Leopoldstraße\nLudwigstraße\n").decode().encode("iso-8859-1")
    return Message(
        envelope(13, "Strassenverzeichnis"),
        mixed("rfc2231-13", [
            text("Anbei.\n"),
            Leaf([
                "Content-Type: text/plain; charset=iso-8859-1",
                "Content-Transfer-Encoding: base64",
                f"Content-Disposition: attachment; filename*=iso-8859-1'de-DE'{pct(name.encode('iso-8859-1'))}",
            ], b64(data), data=data, name=name),
        ]),
    )


def encoded_word(text_, charset="UTF-8"):
    return f"=?{charset}?B?{base64.b64encode(text_.encode(charset)).decode()}?="


@case
def rfc2047_b_outlook():
    first, second = "Protokoll der Sitzung – ", "Übersicht.docx"
    name = first + second
    data = zip_one("word/document.xml", b'<?xml version="1.0"?><w:document/>')
    return Message(
        envelope(14, "Protokoll", frm="=?utf-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>",
                 extra=["X-Mailer: Microsoft Outlook 16.0", "Thread-Index: AdqkL0d3c2FiZGVmZ2hpams="]),
        mixed("_004_AM0PR01MB1234567890ABCDEFGHIJ_", [
            text("Anbei das Protokoll.\n", cte="quoted-printable"),
            Leaf([
                "Content-Type:\n application/vnd.openxmlformats-officedocument.wordprocessingml.document;\n"
                f' name="{encoded_word(first)}\n {encoded_word(second)}"',
                "Content-Description: " + encoded_word(name),
                "Content-Transfer-Encoding: base64",
            ], b64(data), data=data, name=name),
        ]),
    )


@case
def rfc2047_q():
    name = "Résumé 2024.pdf"
    data = pdf("Resume 2024")
    return Message(
        envelope(15, "Application", frm="Chloé Martin <chloe@example.fr>"),
        mixed("rfc2047-q-15", [
            text("My CV is attached.\n"),
            pdf_part(['Content-Disposition: attachment; filename="=?ISO-8859-1?Q?R=E9sum=E9_2024.pdf?="'], data)
            .named(name),
        ]),
    )


@case
def raw_utf8_filename():
    name = "Grüße.pdf"
    data = pdf("Raw UTF-8 name")
    return Message(
        envelope(16, "Raw UTF-8 file name (RFC 6532)"),
        mixed("raw-utf8-16", [
            text("The name is raw UTF-8 in the header.\n"),
            Leaf([
                f'Content-Type: application/pdf; name="{name}"',
                f'Content-Disposition: attachment; filename="{name}"',
                "Content-Transfer-Encoding: base64",
            ], b64(data), data=data, name=name),
        ]),
    )


@case
def name_in_content_type_only():
    return Message(
        envelope(17, "Spacer"),
        mixed("name-only-17", [
            text("A gif.\n"),
            Leaf([
                'Content-Type: image/gif; name="spacer.gif"',
                "Content-Disposition: attachment",
                "Content-Transfer-Encoding: base64",
            ], b64(GIF), data=GIF, name="spacer.gif"),
        ]),
    )


@case
def name_in_disposition_only():
    data = pdf("Contract")
    return Message(
        envelope(18, "Contract"),
        mixed("filename-only-18", [
            text("Signed contract.\n"),
            pdf_part(['Content-Disposition: attachment; filename="contract.pdf"'], data).named("contract.pdf"),
        ]),
    )


@case
def filename_wins_over_name():
    data = crlf("final version\n")
    return Message(
        envelope(19, "Final version"),
        mixed("filename-wins-19", [
            text("Both names are given; the Content-Disposition one wins.\n"),
            Leaf([
                'Content-Type: text/plain; charset=us-ascii; name="draft.txt"',
                'Content-Disposition: attachment; filename="final.txt"',
                "Content-Transfer-Encoding: base64",
            ], b64(data), data=data, name="final.txt"),
        ]),
    )


@case
def no_name():
    data = prng("20", 333)
    note = crlf("A text part sent as an attachment, without a name.\n")
    return Message(
        envelope(20, "Unnamed parts"),
        mixed("no-name-20", [
            text("Two parts without a name.\n"),
            Leaf(["Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64"], b64(data), data=data),
            Leaf([
                "Content-Type: text/plain; charset=us-ascii",
                "Content-Disposition: attachment",
                "Content-Transfer-Encoding: 7bit",
            ], note, data=note),
        ]),
    )


@case
def path_traversal():
    windows = "..\\..\\AppData\\Roaming\\Startup\\run\r.bat"
    junk = lambda k: prng("21" + k, 64)
    return Message(
        envelope(21, "Path traversal in file names", frm="Mallory <mallory@evil.example>"),
        mixed("traversal-21", [
            text("Names with paths.\n"),
            Leaf([
                "Content-Type: application/octet-stream",
                'Content-Disposition: attachment; filename="../../home/user/.ssh/authorized\tkeys"',
                "Content-Transfer-Encoding: base64",
            ], b64(junk("a")), data=junk("a"), name="../../home/user/.ssh/authorized\tkeys"),
            Leaf([
                f'Content-Type: application/x-msdos-program; name="{encoded_word(windows)}"',
                "Content-Transfer-Encoding: base64",
            ], b64(junk("b")), data=junk("b"), name=windows),
            Leaf([
                "Content-Type: application/octet-stream",
                'Content-Disposition: attachment; filename="/etc/passwd"',
                "Content-Transfer-Encoding: base64",
            ], b64(junk("c")), data=junk("c"), name="/etc/passwd"),
            Leaf([
                "Content-Type: application/octet-stream",
                'Content-Disposition: attachment; filename="../.."',
                "Content-Transfer-Encoding: base64",
            ], b64(junk("d")), data=junk("d"), name="../.."),
        ]),
    )


@case
def control_chars_and_dots():
    controls = "\x00scan\x01\x1f\x7fcopy\x85\x9f.pdf"
    dotted = ". .hidden config . ."
    data = pdf("Scan copy")
    cfg = crlf("[core]\nautocrlf = false\n")
    return Message(
        envelope(22, "Control characters in names"),
        mixed("controls-22", [
            text("Names with control characters, dots and spaces.\n"),
            pdf_part([f"Content-Disposition: attachment; filename*=utf-8''{pct(controls.encode())}"], data)
            .named(controls),
            Leaf([
                "Content-Type: text/plain; charset=us-ascii",
                f'Content-Disposition: attachment; filename="{dotted}"',
                "Content-Transfer-Encoding: 7bit",
            ], cfg, data=cfg, name=dotted),
        ]),
    )


@case
def bidi_override():
    exe = "Rechnung_\u202efdp.exe"
    sheet = "\u202a\u202b\u202cbudget\u202d\u2066\u2067\u2068-2024\u2069\u200e\u200f.xlsx"
    exe_data = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + prng("23", 112)
    sheet_data = zip_one("xl/workbook.xml", b'<?xml version="1.0"?><workbook/>')
    return Message(
        envelope(23, "Rechnung", frm="Buchhaltung <billing@evil.example>"),
        mixed("bidi-23", [
            text("Ihre Rechnung.\n"),
            Leaf([
                "Content-Type: application/octet-stream",
                f"Content-Disposition: attachment; filename*=utf-8''{pct(exe.encode())}",
                "Content-Transfer-Encoding: base64",
            ], b64(exe_data), data=exe_data, name=exe),
            Leaf([
                "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                f"Content-Disposition: attachment; filename*=utf-8''{pct(sheet.encode())}",
                "Content-Transfer-Encoding: base64",
            ], b64(sheet_data), data=sheet_data, name=sheet),
        ]),
    )


@case
def duplicate_names():
    a, b = pdf("Report, January"), pdf("Report, February")
    headers = [
        'Content-Type: application/pdf; name="report.pdf"',
        'Content-Disposition: attachment; filename="report.pdf"',
        "Content-Transfer-Encoding: base64",
    ]
    return Message(
        envelope(24, "Two reports"),
        mixed("dup-24", [
            text("Two different files with the same name.\n"),
            Leaf(headers, b64(a), data=a, name="report.pdf"),
            Leaf(headers, b64(b), data=b, name="report.pdf"),
        ]),
    )


@case
def long_name_ascii():
    stem = "Quarterly-financial-statement-and-notes-for-the-board-meeting-"
    name = (stem * 5)[:296] + ".pdf"
    assert len(name) == 300 and name[199] not in ". "
    data = pdf("Long name")
    return Message(
        envelope(25, "A very long file name"),
        mixed("long-ascii-25", [
            text("A 300-character name.\n"),
            pdf_part([f'Content-Disposition: attachment; filename="{name}"'], data).named(name),
        ]),
    )


@case
def long_name_utf8_continuations():
    name = ("Übergabeprotokoll-日本語-" * 20)[:296] + ".pdf"
    assert len(name) == 300
    encoded = name.encode()
    cut = download_name(name).encode()
    # The cut keeps `.pdf` and lands on a character boundary of the stem.
    assert len(cut) <= 200 and cut.endswith(b".pdf")
    segments = [encoded[i : i + 24] for i in range(0, len(encoded), 24)]
    lines = [
        f" filename*{i}*={'utf-8' + chr(39) * 2 if i == 0 else ''}{pct(s)}" for i, s in enumerate(segments)
    ]
    data = pdf("Long UTF-8 name")
    return Message(
        envelope(26, "A very long UTF-8 file name"),
        mixed("long-utf8-26", [
            text("A 300-character name, in RFC 2231 continuations.\n"),
            pdf_part(["Content-Disposition: attachment;\n" + ";\n".join(lines)], data).named(name),
        ]),
    )


@case
def rfc822_7bit():
    csv = crlf("quarter,revenue\nQ1,100\nQ2,120\nQ3,150\n")
    inner = Message(
        envelope(50, "Quarterly numbers", frm="Carol <carol@example.org>", to="Alice Example <alice@example.com>"),
        mixed("inner-27", [
            alternative("inner-alt-27", "Numbers attached.\n", "<p>Numbers attached.</p>\n"),
            Leaf([
                'Content-Type: text/csv; charset=us-ascii; name="q.csv"',
                'Content-Disposition: attachment; filename="q.csv"',
                "Content-Transfer-Encoding: base64",
            ], b64(csv), data=csv, name="q.csv"),
        ]),
    )
    return Message(
        envelope(27, "Fwd: Quarterly numbers"),
        mixed("outer-27", [
            text("Forwarding Carol's mail as an attachment.\n"),
            Embedded([
                'Content-Type: message/rfc822; name="Quarterly numbers.eml"',
                'Content-Disposition: attachment; filename="Quarterly numbers.eml"',
                "Content-Transfer-Encoding: 7bit",
            ], inner, name="Quarterly numbers.eml"),
        ]),
    )


@case
def rfc822_base64():
    inner = Message(
        envelope(51, "Chart", frm="Dave <dave@example.org>", to="Alice Example <alice@example.com>"),
        mixed("inner-28", [
            text("The chart.\n"),
            Leaf([
                'Content-Type: image/png; name="chart.png"',
                'Content-Disposition: attachment; filename="chart.png"',
                "Content-Transfer-Encoding: base64",
            ], b64(PNG4), data=PNG4, name="chart.png"),
        ]),
    )
    return Message(
        envelope(28, "Fwd: Chart (base64 message/rfc822)"),
        mixed("outer-28", [
            text("The forwarded mail is base64-encoded.\n"),
            Embedded(["Content-Type: message/rfc822", "Content-Transfer-Encoding: base64"], inner, encoding="base64"),
        ]),
    )


@case
def rfc822_single_part_inner():
    data = pdf("Statement")
    inner = Message(
        envelope(52, "Statement", frm="Bank <noreply@bank.example>", to="Alice Example <alice@example.com>"),
        Leaf([
            "Content-Type: application/pdf",
            'Content-Disposition: attachment; filename="statement.pdf"',
            "Content-Transfer-Encoding: base64",
        ], b64(data), data=data, name="statement.pdf"),
    )
    return Message(
        envelope(29, "Fwd: Statement"),
        mixed("outer-29", [
            text("The inner message is the PDF alone.\n"),
            Embedded(['Content-Type: message/rfc822; name="statement.eml"', "Content-Transfer-Encoding: 7bit"],
                     inner, name="statement.eml"),
        ]),
    )


@case
def rfc822_nested_twice():
    innermost = Message(
        envelope(53, "Pixel", frm="Erin <erin@example.org>", to="Dave <dave@example.org>"),
        mixed("innermost-30", [
            text("A pixel.\n"),
            Leaf([
                'Content-Type: image/gif; name="pixel.gif"',
                "Content-Transfer-Encoding: base64",
            ], b64(GIF), data=GIF, name="pixel.gif"),
        ]),
    )
    middle = Message(
        envelope(54, "Fwd: Pixel", frm="Dave <dave@example.org>", to="Alice Example <alice@example.com>"),
        mixed("middle-30", [
            text("Forwarded.\n"),
            Embedded(["Content-Type: message/rfc822", "Content-Disposition: attachment"], innermost),
        ]),
    )
    return Message(
        envelope(30, "Fwd: Fwd: Pixel"),
        mixed("outer-30", [
            text("Forwarded twice.\n"),
            Embedded(["Content-Type: message/rfc822", "Content-Disposition: attachment"], middle),
        ]),
    )


@case
def related_inline_cid():
    data = pdf("Newsletter")
    return Message(
        envelope(31, "Newsletter with a logo", extra=["X-Mailer: Apple Mail (2.3731.700.6)"]),
        mixed("mixed-31", [
            mixed("alt-31", [
                text("Newsletter (the logo is in the HTML version).\n"),
                mixed("related-31", [
                    html('<html><body><img src="cid:logo@x" alt="logo"><p>News.</p></body></html>\n'),
                    Leaf([
                        'Content-Type: image/png; name="logo.png"',
                        "Content-Transfer-Encoding: base64",
                        "Content-ID: <logo@x>",
                        'Content-Disposition: inline; filename="logo.png"',
                    ], b64(PNG4), data=PNG4, name="logo.png"),
                ], kind="related", extra=' type="text/html";'),
            ], kind="alternative"),
            pdf_part(['Content-Disposition: attachment; filename="newsletter.pdf"'], data).named("newsletter.pdf"),
        ]),
    )


@case
def inline_cid_no_disposition():
    return Message(
        envelope(32, "Chart inline"),
        mixed("related-32", [
            html('<html><body><p>Chart:</p><img src="cid:chart-1@example.com"></body></html>\n'),
            Leaf([
                'Content-Type: image/png; name="chart.png"',
                "Content-Transfer-Encoding: base64",
                "Content-ID: <chart-1@example.com>",
            ], b64(PNG1), data=PNG1, name="chart.png"),
        ], kind="related"),
    )


@case
def whole_message_pdf():
    data = pdf("Scanner output")
    return Message(
        envelope(33, "Scan from MFP-3", frm="Scanner <scanner@office.example.com>",
                 extra=["X-Mailer: RICOH Network Scanner"]),
        Leaf([
            "Content-Type: application/pdf",
            'Content-Disposition: attachment; filename="scan0001.pdf"',
            "Content-Transfer-Encoding: base64",
        ], b64(data), data=data, name="scan0001.pdf"),
    )


@case
def common_shape():
    data = pdf("Agenda")
    return Message(
        envelope(34, "Agenda for Monday", extra=["X-Mailer: Microsoft Outlook 16.0"]),
        mixed("----=_NextPart_000_0034_01DAB63C", [
            alternative("----=_NextPart_001_0035_01DAB63C", "Agenda attached.\n", "<p>Agenda attached.</p>\n"),
            Leaf([
                'Content-Type: application/pdf; name="agenda.pdf"',
                "Content-Transfer-Encoding: base64",
                'Content-Disposition: attachment; filename="agenda.pdf"',
                "Content-ID: <part1.6F0A3B2C.1D4E5F60@example.com>",
            ], b64(data), data=data, name="agenda.pdf"),
        ], preamble=PREAMBLE),
    )


@case
def apple_inline_between_text():
    return Message(
        envelope(35, "Look at this", extra=["X-Mailer: iPhone Mail (21F90)"]),
        mixed("Apple-Mail-35", [
            text("Before the picture,\n"),
            Leaf([
                'Content-Type: image/png; name="IMG_0001.png"',
                'Content-Disposition: inline; filename="IMG_0001.png"',
                "Content-Transfer-Encoding: base64",
            ], b64(PNG4), data=PNG4, name="IMG_0001.png"),
            Leaf([
                "Content-Type: text/plain; charset=us-ascii",
                "Content-Disposition: inline",
                "Content-Transfer-Encoding: 7bit",
            ], crlf("and after it.\n"), is_body=True),
        ]),
    )


@case
def invalid_type_no_slash():
    data = pdf("Broken type")
    return Message(
        envelope(36, "Broken media type"),
        mixed("badtype-36", [
            text("The attachment's type has no slash.\n"),
            Leaf([
                'Content-Type: pdf; name="broken.pdf"',
                'Content-Disposition: attachment; filename="broken.pdf"',
                "Content-Transfer-Encoding: base64",
            ], b64(data), data=data, name="broken.pdf"),
        ]),
    )


@case
def invalid_type_extra_slash():
    data, img = pdf("Odd type"), PNG1
    return Message(
        envelope(37, "Odd media types"),
        mixed("badtype-37", [
            text("Types that have a slash but are not type/subtype.\n"),
            Leaf([
                'Content-Type: application/pdf/x; name="odd.pdf"',
                'Content-Disposition: attachment; filename="odd.pdf"',
                "Content-Transfer-Encoding: base64",
            ], b64(data), data=data, name="odd.pdf"),
            Leaf([
                'Content-Type: image/; name="empty-subtype.png"',
                'Content-Disposition: attachment; filename="empty-subtype.png"',
                "Content-Transfer-Encoding: base64",
            ], b64(img), data=img, name="empty-subtype.png"),
        ]),
    )


@case
def type_with_parameters():
    data = pdf("x")
    csv = crlf("id,value\n1,one\n")
    return Message(
        envelope(38, "Media types with parameters"),
        mixed("params-38", [
            text("Parameters after the type.\n"),
            Leaf(["Content-Type: application/pdf; name=x.pdf", "Content-Transfer-Encoding: base64"],
                 b64(data), data=data, name="x.pdf"),
            Leaf([
                'Content-Type: text/csv;charset="utf-8";header=present;\n name="data.csv"',
                "Content-Transfer-Encoding: base64",
            ], b64(csv), data=csv, name="data.csv"),
        ]),
    )


@case
def uppercase_types():
    data = pdf("Upper case")
    return Message(
        envelope(39, "UPPER CASE HEADERS", extra=["X-Mailer: Lotus Notes Release 8.5"]),
        Multi(['Content-Type: MULTIPART/MIXED; BOUNDARY="UPPER-39"'], "UPPER-39", [
            Leaf(["CONTENT-TYPE: TEXT/PLAIN; CHARSET=US-ASCII", "CONTENT-TRANSFER-ENCODING: 7BIT"],
                 crlf("THE BODY.\n"), is_body=True),
            Leaf([
                'Content-Type: IMAGE/PNG; NAME="PIXEL.PNG"',
                "Content-Transfer-Encoding: BASE64",
                'Content-Disposition: INLINE; FILENAME="PIXEL.PNG"',
                "Content-ID: <PIXEL@X>",
            ], b64(PNG1), data=PNG1, name="PIXEL.PNG"),
            Leaf([
                'Content-Type: Application/PDF; Name="Scan.PDF"',
                "Content-Transfer-Encoding: Base64",
                "Content-Disposition: Attachment",
            ], b64(data), data=data, name="Scan.PDF"),
        ]),
    )


@case
def missing_closing_boundary():
    data = pdf("Truncated mail")
    return Message(
        envelope(40, "Truncated: no closing boundary"),
        mixed("truncated-40", [
            text("The closing boundary of this message is missing.\n"),
            pdf_part(['Content-Disposition: attachment; filename="truncated.pdf"'], data).named("truncated.pdf"),
        ], close=False),
    )


@case
def no_content_type():
    data = prng("41", 100)
    return Message(
        envelope(41, "A part without Content-Type"),
        mixed("no-ctype-41", [
            text("The attachment has no Content-Type header.\n"),
            Leaf([
                'Content-Disposition: attachment; filename="notes.dat"',
                "Content-Transfer-Encoding: base64",
            ], b64(data), data=data, name="notes.dat"),
        ]),
    )


@case
def calendar_and_html_file():
    ics = crlf(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Example Corp//Calendar 1.0//EN\nMETHOD:REQUEST\n"
        "BEGIN:VEVENT\nUID:42-20240610T090000Z@example.com\nDTSTAMP:20240604T071700Z\n"
        "DTSTART:20240610T090000Z\nDTEND:20240610T100000Z\nSUMMARY:Planning\n"
        "ORGANIZER:mailto:alice@example.com\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    page = crlf("<!doctype html>\n<html><body><h1>Newsletter</h1></body></html>\n")
    return Message(
        envelope(42, "Invitation: Planning", extra=["X-Mailer: Google Calendar"]),
        mixed("cal-42", [
            mixed("cal-alt-42", [
                text("You are invited to Planning.\n"),
                html("<p>You are invited to <b>Planning</b>.</p>\n"),
                Leaf(["Content-Type: text/calendar; charset=UTF-8; method=REQUEST", "Content-Transfer-Encoding: 7bit"],
                     ics, data=ics),
            ], kind="alternative"),
            Leaf([
                'Content-Type: application/ics; name="invite.ics"',
                'Content-Disposition: attachment; filename="invite.ics"',
                "Content-Transfer-Encoding: base64",
            ], b64(ics), data=ics, name="invite.ics"),
            Leaf([
                'Content-Type: text/html; charset=utf-8; name="newsletter.html"',
                'Content-Disposition: attachment; filename="newsletter.html"',
                "Content-Transfer-Encoding: base64",
            ], b64(page), data=page, name="newsletter.html"),
        ]),
    )


@case
def smime_signed():
    data = pdf("Order 7781")
    signature = b"\x30\x82\x04\x2a\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02\xa0" + prng("43", 500)
    return Message(
        envelope(43, "Order 7781 (signed)", extra=["X-Mailer: Microsoft Outlook 16.0"]),
        mixed("----=_signed_43", [
            mixed("----=_mixed_43", [
                text("Order attached, signed.\n"),
                pdf_part(['Content-Disposition: attachment; filename="order-7781.pdf"'], data).named("order-7781.pdf"),
            ]),
            Leaf([
                'Content-Type: application/pkcs7-signature; name="smime.p7s"',
                "Content-Transfer-Encoding: base64",
                'Content-Disposition: attachment; filename="smime.p7s"',
                "Content-Description: S/MIME Cryptographic Signature",
            ], b64(signature), data=signature, name="smime.p7s"),
        ], kind="signed", extra=' protocol="application/pkcs7-signature"; micalg=sha-256;'),
    )


# ---------------------------------------------------------------------------


def main():
    written = []
    for number, build in enumerate(CASES, 1):
        made = build()
        message, form = (made if isinstance(made, tuple) else (made, "crlf"))
        slug = f"{number:02d}-{build.__name__.replace('_', '-')}"
        slug = slug.replace("sevenbit", "7bit").replace("eightbit", "8bit")
        raw = message.bytes()
        if form == "lf":
            raw = raw.replace(CRLF, b"\n")
            assert b"\r" not in raw
        assert len(raw) < 40 * 1024, (slug, len(raw))
        expected = golden(message)
        check(slug, raw, expected, leaves(message))
        with open(os.path.join(HERE, slug + ".eml"), "wb") as f:
            f.write(raw)
        with open(os.path.join(HERE, slug + ".json"), "w", encoding="utf-8", newline="\n") as f:
            f.write(dump_json({"attachments": expected}))
        written.append(slug)
    print(f"{len(written)} messages written", file=sys.stderr)
    for note in NOTES:
        print("python differs:", note, file=sys.stderr)


if __name__ == "__main__":
    main()
