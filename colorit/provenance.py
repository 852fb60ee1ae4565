"""What marks a colorized copy as such: that ColorIt made its colours, which version, with which model,
how many hints and how many reference photos.

An archive must be able to tell a colorized copy from a photograph taken in colour, also once the file
has left the folder it was made in. colorit.encoding writes this into every image file it encodes (command
line, server, `colorize()` on bytes) unless told not to (`--no-provenance`, provenance=False): an XMP
packet (JPEG, WebP, PNG, TIFF), the EXIF Software tag and, in a PNG, text chunks that any viewer shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from colorit.version import __version__

# XMP properties of our own (xmp:CreatorTool and dc:description carry the same for tools that know
# only the standard schemas); the URN names no web site, which could change hands.
XMP_NAMESPACE = "urn:colorit:provenance:1/"


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


@dataclass(frozen=True)
class Provenance:
    """How one output was colorized."""

    model: str
    hints: int = 0
    references: int = 0
    version: str = __version__

    @property
    def software(self) -> str:
        return f"ColorIt {self.version}"

    def description(self) -> str:
        """One line for a person, as PNG text and XMP dc:description."""
        settings = ", ".join(
            [f"model {self.model}", _count(self.hints, "hint"), _count(self.references, "reference photo")]
        )
        return f"Colorized by {self.software} ({settings}): its colours are the model's estimate, not recorded from the scene"

    def xmp(self) -> bytes:
        """An XMP packet (UTF-8), as JPEG APP1, WebP's XMP chunk, PNG's iTXt and TIFF tag 700 hold it."""
        fields = {
            "colorit:Colorized": "True",
            "colorit:Version": self.version,
            "colorit:Model": self.model,
            "colorit:Hints": str(self.hints),
            "colorit:References": str(self.references),
            "xmp:CreatorTool": self.software,
        }
        attributes = "".join(f"\n    {name}={quoteattr(value)}" for name, value in fields.items())
        packet = (
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            '  <rdf:Description rdf:about=""\n'
            '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
            '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
            f"    xmlns:colorit={quoteattr(XMP_NAMESPACE)}{attributes}>\n"
            "   <dc:description><rdf:Alt>"
            f'<rdf:li xml:lang="x-default">{escape(self.description())}</rdf:li>'
            "</rdf:Alt></dc:description>\n"
            "  </rdf:Description>\n"
            " </rdf:RDF>\n"
            "</x:xmpmeta>\n"
            '<?xpacket end="w"?>'
        )
        return packet.encode("utf-8")
