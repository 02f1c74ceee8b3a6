"""File formats the loaders read, apart from any one collection's wiring (as ir_datasets keeps them).

- `text`: plain or gzip-compressed text, line by line or in large pieces; a bad byte names its line.
- `jsonl`: JSON Lines records and JSON fields as text.
- `beir`: a BEIR folder's corpus, queries and qrels files.
- `sgml`: TREC-style SGML document files (``<DOC><DOCNO>...</DOCNO>...</DOC>``), streamed.
- `trec`: TREC topic files (``<top>`` blocks) and TREC qrels.

Every reader raises `harness.data.base.DataError` naming the file and line of a malformed record.
This package imports none of its modules, so a loader's code identity reaches only those it uses.
"""
