"""Zotero RDF (Zotero's own "Zotero RDF" export): RDF/XML read with defusedxml.

The file is parsed by expat through defusedxml, which refuses a DTD, entity declarations and external
references (no entity expansion, nothing fetched); nesting deeper than :data:`MAX_DEPTH` is refused too
(an export nests 7 deep). The elements under ``rdf:RDF`` are kept as they close, each with its line; if the
XML breaks, the ones closed before the break are read and the break is reported with its line.

An item is a child of ``rdf:RDF`` with a ``z:itemType`` other than attachment or note. Zotero writes a
journal article's DOI on its journal (``dcterms:isPartOf`` → a ``bib:Journal``, inline or by
``rdf:resource``: ``<dc:identifier>DOI 10.…</dc:identifier>``), an arXiv preprint's id in
``prism:number`` ("arXiv:1706.03762") and in the extra field (``dc:description``), its URL in
``dc:identifier/dcterms:URI/rdf:value`` and usually in ``rdf:about``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from ..bibtex import Entry, Problem, entry_from_text
from .errors import Unreadable

MAX_DEPTH = 64

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
Z = "{http://www.zotero.org/namespaces/export#}"
DC = "{http://purl.org/dc/elements/1.1/}"
DCTERMS = "{http://purl.org/dc/terms/}"
BIB = "{http://purl.org/net/biblio#}"
FOAF = "{http://xmlns.com/foaf/0.1/}"
PRISM = "{http://prismstandard.org/namespaces/1.2/basic/}"
_NOT_ITEMS = {"attachment", "note"}
_DOI = re.compile(r"\A\s*DOI\s+(\S+)")
_TYPES = {"journalArticle": "article", "conferencePaper": "inproceedings", "book": "book",
          "bookSection": "incollection", "thesis": "phdthesis", "report": "techreport", "preprint": "misc"}


class _TooDeep(Exception):
    pass


class _Collector:
    """An ElementTree parser target that keeps the children of the root, each with its start line."""

    def __init__(self):
        self.parser = None  # the DefusedXMLParser, to ask expat for the line
        self.stack: list[ET.Element] = []
        self.root_tag: str | None = None
        self.nodes: list[tuple[ET.Element, int]] = []
        self._line = 0

    def start(self, tag, attrib):
        if len(self.stack) >= MAX_DEPTH:
            raise _TooDeep
        elem = ET.Element(tag, attrib)
        if self.stack:
            self.stack[-1].append(elem)
        else:
            self.root_tag = tag
        if len(self.stack) == 1:
            self._line = self.parser.parser.CurrentLineNumber
        self.stack.append(elem)

    def end(self, tag):
        elem = self.stack.pop()
        if len(self.stack) == 1:  # a child of the root is complete
            self.nodes.append((elem, self._line))
        return elem

    def data(self, text):
        if self.stack:
            elem = self.stack[-1]
            if len(elem):
                elem[-1].tail = (elem[-1].tail or "") + text
            else:
                elem.text = (elem.text or "") + text

    def close(self):
        return None


def read(text: str) -> tuple[list[Entry], list[Problem]]:
    """The items of a Zotero RDF export as BibTeX entries; a problem for a break in the XML."""
    target = _Collector()
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    target.parser = parser
    problems: list[Problem] = []
    try:
        parser.feed(text)
        parser.close()
    except _TooDeep:
        raise Unreadable(f"the XML nests more than {MAX_DEPTH} elements deep; a Zotero RDF export "
                         "never does") from None
    except DefusedXmlException:
        raise Unreadable("the XML declares a DTD, entities or external references, which a Zotero RDF "
                         "export never does; refused") from None
    except ET.ParseError as e:
        if target.root_tag is None:
            raise Unreadable(f"not XML ({e})") from None
        problems.append(Problem(e.position[0], f"the XML breaks here ({e}); the items after the last "
                                               "complete one were not read"))
    if target.root_tag is not None and target.root_tag != RDF + "RDF":
        raise Unreadable("not a Zotero RDF export: its root element is not rdf:RDF")
    about = {n.get(RDF + "about"): n for n, _ in target.nodes if n.get(RDF + "about")}
    entries = []
    for n, (node, line) in enumerate((x for x in target.nodes if _is_item(x[0])), 1):
        entries.append(_entry(node, line, n, about))
    return entries, problems


def _text(elem: ET.Element | None) -> str:
    return "".join(elem.itertext()) if elem is not None else ""


def _is_item(node: ET.Element) -> bool:
    kind = _text(node.find(Z + "itemType")).strip()
    return bool(kind) and kind not in _NOT_ITEMS


def _container(node: ET.Element, about: dict[str, ET.Element]) -> ET.Element | None:
    part = node.find(DCTERMS + "isPartOf")
    if part is None:
        return None
    if len(part):
        return part[0]
    return about.get(part.get(RDF + "resource"))


def _identifiers(node: ET.Element) -> tuple[str, list[str]]:
    """(DOI, URLs) among a node's dc:identifier children."""
    doi, urls = "", []
    for ident in node.findall(DC + "identifier"):
        value = ident.find(f"{DCTERMS}URI/{RDF}value")
        if value is not None:
            urls.append(_text(value))
        elif m := _DOI.match(_text(ident)):
            doi = doi or m.group(1)
    return doi, urls


def _entry(node: ET.Element, line: int, n: int, about: dict[str, ET.Element]) -> Entry:
    doi, urls = _identifiers(node)
    container = _container(node, about)
    journal, notes = "", []
    if container is not None:
        container_doi, container_urls = _identifiers(container)
        doi = doi or container_doi
        urls += container_urls
        journal = _text(container.find(DC + "title"))
        notes.append(_text(container.find(PRISM + "number")))
    subject = node.get(RDF + "about", "")
    if subject.startswith(("http://", "https://")):
        urls.append(subject)
    notes += [_text(node.find(PRISM + "number")), _text(node.find(DC + "description"))]
    authors = []
    for person in node.iterfind(f"{BIB}authors/{RDF}Seq/{RDF}li/{FOAF}Person"):
        surname, given = _text(person.find(FOAF + "surname")), _text(person.find(FOAF + "givenName"))
        authors.append(f"{surname}, {given}" if surname and given else surname or given)
    year = re.search("[0-9]{4}", _text(node.find(DC + "date")))
    fields = {
        "title": _text(node.find(DC + "title")),
        "author": " and ".join(a for a in authors if a),
        "year": year.group() if year else "",
        "doi": doi,
        "url": " ; ".join(u for u in urls if u),
        "note": " ; ".join(t for t in notes if t.strip()),
        "journal": journal,
    }
    kind = _TYPES.get(_text(node.find(Z + "itemType")).strip(), "misc")
    return entry_from_text(kind, subject or f"item {n}", fields, line)
