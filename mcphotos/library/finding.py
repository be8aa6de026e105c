"""Library commands that read: find (text, example, combined, filtered, cut), albums, embed, export."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from mcphotos.library.base import LibraryBase, absolute
from mcphotos.search.hits import SearchHit
from mcphotos.search.query import FindSpec, Term

# numpy, the search and the cut-offs are imported where a search runs here: a find that the warm
# server answers (warm/) needs none of them, and importing them is most of such a find's time.
if TYPE_CHECKING:
    import numpy as np

    from mcphotos.export import Embedding, ExportReport
    from mcphotos.ocr.textstore import TextMatch
    from mcphotos.search.albums import Album, SyncReport
    from mcphotos.search.cutoff import Cut
    from mcphotos.search.nearest import SearchFilter


class FindMixin(LibraryBase):
    # -- find ----------------------------------------------------------------------------------

    def find(self, query: str | None = None, k: int = 20, in_dirs: Sequence[str] = (),
             min_score: float | None = None, tags: Sequence[str] = ()) -> list[SearchHit]:
        """Photos matching ``query`` (find's syntax), under ``in_dirs``, carrying all ``tags``."""
        return self.run_find(FindSpec(text=query, k=k, in_dirs=tuple(in_dirs), min_score=min_score,
                                      tags=tuple(tags)))

    def run_find(self, spec: FindSpec) -> list[SearchHit]:
        """A full find: combined terms, filters and cut-off."""
        remote = self._warm_find(spec)
        if remote is not None:
            return remote
        self.store(create=False)
        terms = spec.terms()
        matches = self.text_matches(spec.contains) if spec.contains else None
        if not terms:
            if matches is not None:  # only --contains (and filters): the best text matches
                return self._find_by_text(spec, matches)
            return self._find_by_tags(spec)  # only --tag: list the tagged photos
        self._open_in_parallel(terms)
        return self.find_by_vector(spec, self.query_vector(terms), matches)

    def find_by_vector(self, spec: FindSpec, vector: np.ndarray,
                       matches: dict[int, TextMatch] | None = None) -> list[SearchHit]:
        """The hits nearest ``vector`` (a query's combined vector) under ``spec``'s filters and
        cut-off; with ``--contains`` (``matches``: :meth:`text_matches`), each with its snippet."""
        from mcphotos.search.cutoff import Cut

        if spec.contains and matches is None:
            matches = self.text_matches(spec.contains)
        cut = Cut(spec.relative, spec.auto_cut)
        hits = self.search_vector(vector, spec.k, spec.min_score, filters=self.filters_for(spec, matches),
                                  cut=cut if cut.active else None)
        if matches is None:
            return hits
        snippets = {m.hash: m.snippet for m in matches.values()}
        return [replace(h, snippet=snippets.get(h.hash)) for h in hits]

    def _warm_find(self, spec: FindSpec) -> list[SearchHit] | None:
        """The hits of ``spec`` as a running server finds them (it has the store, the search index
        and the model open), or None to search here. Only for queries without photo terms: a
        photo names a file by a path that this process resolves, and its vector comes from the
        store or through the warm encoder anyway. The server's warnings are said here too."""
        import logging

        from mcphotos.errors import UsageError

        try:
            terms = spec.terms()
        except UsageError:
            return None  # said by the local search, in its usual order
        if any(t.kind == "image" for t in terms):
            return None
        client = self.warm_client()
        if client is None:
            return None
        from mcphotos.warm.client import WarmUnavailable

        wire = replace(spec, in_dirs=tuple(absolute(spec.in_dirs)))  # as this process's cwd means them
        try:
            rows, warnings = client.find(wire.to_dict())
            hits = [SearchHit(**row) for row in rows]
        except (WarmUnavailable, TypeError):
            return None
        for message in warnings:
            logging.getLogger("mcphotos").warning("%s", message)
        return hits

    def warm_up(self) -> None:
        """Open the engine's text tower and the search index, so the first query is fast (serve)."""
        super().warm_up()
        store = self.store(create=False)
        if store.dim() is not None and self._search_ann is None:
            self._search_ann = self.ann()
            self._search_ann.ensure(allow_build=False)

    def text_matches(self, contains: Sequence[str]) -> dict[int, TextMatch]:
        """image id -> match for the photos whose recognized text holds every ``contains`` value (SQL only)."""
        from mcphotos.ocr.textstore import text_matches

        return text_matches(self.store(create=False), list(contains))

    def _open_in_parallel(self, terms: Sequence[Term]) -> None:
        """For a text never asked before: open the engine's text tower in the background while
        the search index loads here (ONNX Runtime opens in threads; torch simply loads first)."""
        texts = [t.value for t in terms if t.kind == "text"]
        store = self.store(create=False)
        if not texts or self._engine_factory is not None or len(store.cached_texts(texts)) == len(set(texts)):
            return
        prefetch = getattr(self.engine(), "prefetch", None)
        if prefetch is not None:
            prefetch("text")
        if store.dim() is not None and self._search_ann is None:
            self._search_ann = self.ann()
            self._search_ann.load()

    def search_vector(self, vector: np.ndarray, k: int = 20, min_score: float | None = None,
                      filters: SearchFilter | None = None, cut: Cut | None = None) -> list[SearchHit]:
        from mcphotos.search.nearest import search

        store = self.store(create=False)
        if store.dim() is None:
            ann = None
        else:
            # Kept across searches: loading the index from disk costs more than a query.
            if self._search_ann is None:
                self._search_ann = self.ann()
            ann = self._search_ann
        return search(store, vector, k, min_score, ann, filters=filters, cut=cut)

    def image_embeddings(self, paths: Sequence[str]) -> list[Embedding]:
        """``export.Embedding`` per photo: the stored vector when the store has its bytes, else embedded now."""
        from mcphotos.export import embed_images

        return embed_images(self.vectors(), paths)

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts``: through the store's text cache when there is a store."""
        return self.vectors().texts(list(texts))

    def query_vector(self, terms: Sequence[Term]) -> np.ndarray:
        """The unit vector of combined ``terms`` (see search/query.py for the math)."""
        import numpy as np

        from mcphotos.search.query import combine

        texts = [t.value for t in terms if t.kind == "text"]
        images = [t.value for t in terms if t.kind == "image"]
        text_vecs = iter(self.text_vectors(texts)) if texts else iter(())
        image_vecs = iter([e.vector for e in self.image_embeddings(images)]) if images else iter(())
        rows = [next(text_vecs) if t.kind == "text" else next(image_vecs) for t in terms]
        return combine(np.stack(rows), [t.weight for t in terms])

    def filters_for(self, spec: FindSpec, matches: dict[int, TextMatch] | None = None) -> SearchFilter:
        """The spec's filters; the photos allowed are those with every tag and, with --contains, the text."""
        from mcphotos.search.nearest import SearchFilter

        ids = self.tag_image_ids(spec.tags)
        if spec.contains:
            found = frozenset(matches if matches is not None else self.text_matches(spec.contains))
            ids = found if ids is None else ids & found
        return SearchFilter(tuple(absolute(spec.in_dirs)), spec.exts, spec.after, spec.before, ids)

    def tag_image_ids(self, tags: Sequence[str]) -> frozenset[int] | None:
        """Image ids carrying every tag in ``tags`` (None: no restriction)."""
        from mcphotos.tagging.tagger import image_ids_with_tags

        if not tags:
            return None
        return frozenset(image_ids_with_tags(self.store(create=False), list(tags)))

    def _find_by_tags(self, spec: FindSpec) -> list[SearchHit]:
        """No query, only --tag: the tagged photos (passing the other filters), best tag score first."""
        from mcphotos.search.nearest import files_for_ids
        from mcphotos.tagging.tagger import tag_scores

        filters = self.filters_for(spec)
        ids = sorted(filters.image_ids or ())
        files = files_for_ids(self.store(), ids, filters)
        scores = tag_scores(self.store(), list(spec.tags))
        hits = [SearchHit(p, float(scores.get(h, 0.0)), h) for rows in files.values() for p, h in rows
                if os.path.exists(p)]
        hits.sort(key=lambda x: (-x.score, x.path))
        return [x for x in hits if spec.min_score is None or x.score >= spec.min_score][:spec.k]

    def _find_by_text(self, spec: FindSpec, matches: dict[int, TextMatch]) -> list[SearchHit]:
        """No query, only --contains: the matching photos (passing the filters), best text match first.

        The score is the match's BM25 relevance; --min-score and the cut-offs apply to it.
        """
        from mcphotos.search.cutoff import Cut, cut_count
        from mcphotos.search.nearest import files_for_ids

        filters = self.filters_for(spec, matches)
        ids = sorted(filters.image_ids or (), key=lambda i: (-matches[i].score, i))
        files = files_for_ids(self.store(), ids, filters)
        hits: list[SearchHit] = []
        for i in ids:
            m = matches[i]
            if spec.min_score is not None and m.score < spec.min_score:
                break
            hits += [SearchHit(p, m.score, h, snippet=m.snippet) for p, h in sorted(files.get(i, []))
                     if os.path.exists(p)]
        cut = Cut(spec.relative, spec.auto_cut)
        if cut.active:
            scores = {h.hash: h.score for h in hits}  # copies share their image's score; dicts keep rank order
            keep = set(list(scores)[:cut_count(list(scores.values()), cut, spec.k)])
            hits = [h for h in hits if h.hash in keep]
        return hits[:spec.k]

    # -- albums --------------------------------------------------------------------------------

    def save_album(self, name: str, spec: FindSpec, replace: bool = False) -> Album:
        from mcphotos.search.albums import save_album

        return save_album(self.store(create=False), name, spec, replace=replace)

    def album(self, name: str) -> Album:
        from mcphotos.search.albums import get_album

        return get_album(self.store(create=False), name)

    def albums(self) -> list[Album]:
        from mcphotos.search.albums import list_albums

        return list_albums(self.store(create=False))

    def delete_album(self, name: str) -> None:
        from mcphotos.search.albums import delete_album

        delete_album(self.store(create=False), name)

    def sync_album(self, name: str, directory: str | os.PathLike[str]) -> SyncReport:
        """Run the album's query and make ``directory`` hold one link per match."""
        from mcphotos.search.albums import record_sync, sync_links

        album = self.album(name)
        hits = self.run_find(album.spec)
        report = sync_links(album.name, [(h.path, h.hash) for h in hits], directory)
        record_sync(self.store(), report, len({h.path for h in hits}))
        return report

    # -- export --------------------------------------------------------------------------------

    def export(self, directory: str | os.PathLike[str]) -> ExportReport:
        """Every indexed file's vector and metadata, with its tags, into ``directory``."""
        from mcphotos.export import export_store

        return export_store(self.store(create=False), directory, tags=self.tags_for_hashes)

    def tags_for_hashes(self, hashes: Sequence[str]) -> dict[str, list[str]]:
        """Tag labels per content hash, for export."""
        from mcphotos.tagging.tagger import tags_for_hashes

        found = tags_for_hashes(self.store(create=False), list(hashes))
        return {h: [t.label for t in tags] for h, tags in found.items()}

