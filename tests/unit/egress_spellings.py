"""URLs that reach an internal address, spelled every way a client or resolver might accept: the table of the
egress tests (unit: the policy and the normalization; e2e: the channel API and the connection never made).

`{port}` stands for the port of the test's receiver on 127.0.0.1 (tests without one put 80 there). Every
entry of `LOOPBACK` reaches 127.0.0.1 if the guard lets it through; `INTERNAL` reaches other internal ranges;
`UNSAFE_HOSTS` are refused by the spelling rules whatever they would reach.
"""

from __future__ import annotations

__all__ = ["INTERNAL", "LOOPBACK", "UNSAFE_HOSTS", "digits_in"]


def digits_in(zero: int, text: str) -> str:
    """`text` with its ASCII digits replaced by the Unicode digits whose zero is code point `zero`."""
    return "".join(chr(zero + int(char)) if char.isdigit() else char for char in text)


_OUTLINED_ZERO = 0x1CCF0  # Unicode 16 "outlined digits": unknown to older Unicode databases
_FULL_WIDTH_ZERO = 0xFF10
_MATH_BOLD_ZERO = 0x1D7CE
_MATH_DOUBLE_STRUCK_ZERO = 0x1D7D8
_MATH_MONOSPACE_ZERO = 0x1D7F6
_ARABIC_INDIC_ZERO = 0x0660
_EXTENDED_ARABIC_INDIC_ZERO = 0x06F0
_DEVANAGARI_ZERO = 0x0966

LOOPBACK: list[tuple[str, str]] = [
    ("dotted", "http://127.0.0.1:{port}/hook"),
    ("decimal", "http://2130706433:{port}/hook"),
    ("decimal, trailing dot", "http://2130706433.:{port}/hook"),
    ("octal", "http://0177.0.0.1:{port}/hook"),
    ("octal, one number", "http://017700000001:{port}/hook"),
    ("octal, padded", "http://0177.0000.0000.0001:{port}/hook"),
    ("hex", "http://0x7f000001:{port}/hook"),
    ("hex, dotted", "http://0x7f.0x0.0x0.0x1:{port}/hook"),
    ("hex, upper case", "http://0X7F.1:{port}/hook"),
    ("short, two parts", "http://127.1:{port}/hook"),
    ("short, three parts", "http://127.0.1:{port}/hook"),
    ("zero", "http://0:{port}/hook"),
    ("trailing dot", "http://127.0.0.1.:{port}/hook"),
    ("two trailing dots", "http://127.0.0.1..:{port}/hook"),
    ("IPv4-mapped IPv6", "http://[::ffff:127.0.0.1]:{port}/hook"),
    ("IPv4-mapped IPv6, hex", "http://[::ffff:7f00:1]:{port}/hook"),
    ("IPv4-mapped IPv6, long", "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/hook"),
    ("IPv4-mapped IPv6, upper case", "http://[::FFFF:127.0.0.1]:{port}/hook"),
    ("IPv4-compatible IPv6", "http://[::127.0.0.1]:{port}/hook"),
    ("NAT64", "http://[64:ff9b::127.0.0.1]:{port}/hook"),
    ("6to4", "http://[2002:7f00:1::]:{port}/hook"),
    ("IPv6 loopback", "http://[::1]:{port}/hook"),
    ("localhost", "http://localhost:{port}/hook"),
    ("localhost, mixed case", "http://LocalHost:{port}/hook"),
    ("localhost, trailing dot", "http://localhost.:{port}/hook"),
    ("under .localhost", "http://api.localhost:{port}/hook"),
    ("scheme in upper case", "HTTP://127.0.0.1:{port}/hook"),
    ("userinfo naming a public host", "http://public.example@127.0.0.1:{port}/hook"),
    ("userinfo with a port", "http://public.example:443@127.0.0.1:{port}/hook"),
    ("two at signs", "http://a@public.example@127.0.0.1:{port}/hook"),
    ("fragment hiding a public host", "http://127.0.0.1:{port}#@public.example/"),
    ("query hiding a public host", "http://127.0.0.1:{port}?@public.example/"),
    ("backslash before the host", "http://public.example\\@127.0.0.1:{port}/hook"),
    ("backslash after the host", "http://127.0.0.1:{port}\\@public.example/"),
    ("percent-encoded host", "http://%31%32%37.0.0.1:{port}/hook"),
    ("percent-encoded digit", "http://127.0.0.%31:{port}/hook"),
    ("percent-encoded localhost", "http://%6c%6f%63%61%6c%68%6f%73%74:{port}/hook"),
    ("outlined digit U+1CCF1", "http://127.0.0.\U0001ccf1:{port}/hook"),
    ("outlined digits", "http://" + digits_in(_OUTLINED_ZERO, "127.0.0.1") + ":{port}/hook"),
    ("full-width digits", "http://" + digits_in(_FULL_WIDTH_ZERO, "127.0.0.1") + ":{port}/hook"),
    ("full-width stop U+FF0E", "http://127\uff0e0\uff0e0\uff0e1:{port}/hook"),
    ("ideographic stop U+3002", "http://127\u30020\u30020\u30021:{port}/hook"),
    ("half-width stop U+FF61", "http://127\uff610\uff610\uff611:{port}/hook"),
    ("full-width digits and stops", "http://" + digits_in(_FULL_WIDTH_ZERO, "127\uff0e0\u30020\uff611") + ":{port}/"),
    ("mathematical bold digits", "http://" + digits_in(_MATH_BOLD_ZERO, "127.0.0.1") + ":{port}/hook"),
    ("mathematical double-struck", "http://" + digits_in(_MATH_DOUBLE_STRUCK_ZERO, "127.0.0.1") + ":{port}/hook"),
    ("mathematical monospace", "http://127.0.0." + digits_in(_MATH_MONOSPACE_ZERO, "1") + ":{port}/hook"),
    ("Arabic-Indic digits", "http://" + digits_in(_ARABIC_INDIC_ZERO, "127.0.0.1") + ":{port}/hook"),
    ("Extended Arabic-Indic", "http://127.0.0." + digits_in(_EXTENDED_ARABIC_INDIC_ZERO, "1") + ":{port}/hook"),
    ("Devanagari digits", "http://" + digits_in(_DEVANAGARI_ZERO, "127.0.0.1") + ":{port}/hook"),
    ("circled digits", "http://\u2460\u2461\u2466.0.0.\u2460:{port}/hook"),
    ("superscript digits", "http://\u00b9\u00b2\u2077.0.0.\u00b9:{port}/hook"),
    ("full-width decimal", "http://" + digits_in(_FULL_WIDTH_ZERO, "2130706433") + ":{port}/hook"),
    ("full-width IPv6 loopback", "http://[\uff1a\uff1a\uff11]:{port}/hook"),
    ("IDNA localhost, circled l", "http://\u24dbocalhost:{port}/hook"),
    ("IDNA localhost, full-width", "http://\uff2c\uff2f\uff23\uff21\uff2c\uff28\uff2f\uff33\uff34:{port}/hook"),
    ("IDNA localhost, ideographic stop", "http://localhost\u3002:{port}/hook"),
    ("IDNA under .localhost", "http://api.\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54:{port}/hook"),
    ("zero-width space in the host", "http://127.0.0.1\u200b:{port}/hook"),
]

INTERNAL: list[tuple[str, str]] = [
    ("metadata", "http://169.254.169.254/latest/meta-data/"),
    ("metadata, decimal", "http://2852039166/latest/meta-data/"),
    ("metadata, hex", "http://0xa9fea9fe/latest/meta-data/"),
    ("metadata, short", "http://169.254.43518/latest/meta-data/"),
    ("metadata, IPv4-mapped", "http://[::ffff:a9fe:a9fe]/latest/meta-data/"),
    ("metadata, NAT64", "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/"),
    ("metadata, 6to4", "http://[2002:a9fe:a9fe::1]/latest/meta-data/"),
    ("metadata, outlined digits", "http://" + digits_in(_OUTLINED_ZERO, "169.254.169.254") + "/latest/meta-data/"),
    ("metadata, full-width", "http://" + digits_in(_FULL_WIDTH_ZERO, "169.254.169.254") + "/latest/meta-data/"),
    ("metadata, mathematical", "http://169.254.169." + digits_in(_MATH_BOLD_ZERO, "254") + "/latest/meta-data/"),
    ("private 10/8, short", "http://10.1/hook"),
    ("private 10/8, outlined", "http://10.0.0." + digits_in(_OUTLINED_ZERO, "7") + "/hook"),
    ("private 192.168/16, full-width stops", "http://192\uff0e168\u30021\uff611/hook"),
    ("private 172.16/12, octal", "http://0254.020.0.1/hook"),
    ("CGNAT", "http://100.64.0.1/hook"),
    ("unique local IPv6", "http://[fd12:3456::1]/hook"),
    ("link-local IPv6 with a zone", "http://[fe80::1%25eth0]/hook"),
    ("unspecified", "http://0.0.0.0/hook"),
]

UNSAFE_HOSTS: list[tuple[str, str]] = [
    ("ends in a number, no address", "http://1.2.3.4.5/hook"),
    ("numeric last label", "http://hooks.example.123/hook"),
    ("not valid IDNA", "http://" + digits_in(_ARABIC_INDIC_ZERO, "127") + ".example/hook"),
    ("public address in full-width digits", "http://" + digits_in(_FULL_WIDTH_ZERO, "8.8.8.8") + "/hook"),
    ("empty label", "http://hooks..example.com/hook"),
    ("percent in a name", "http://hooks%2eexample.com/hook"),
    ("label longer than 63", "http://" + "a" * 64 + ".example.com/hook"),
    ("not http", "ftp://hooks.example.com/x"),
    ("file", "file:///etc/passwd"),
    ("no host", "http:///nohost"),
    ("port 0", "http://hooks.example.com:0/x"),
    ("whitespace", "http://hooks.example.com /x"),
]
