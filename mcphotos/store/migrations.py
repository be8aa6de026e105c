"""The store's schema, as numbered migrations.

Each entry runs once, in its own transaction, and bumps ``PRAGMA user_version`` (see
``Store._migrate``). Append only; never edit one that has shipped.
"""

from __future__ import annotations

# Numbered migrations: each runs in its own transaction and bumps PRAGMA user_version.
# Append only; never edit one that has shipped.
MIGRATIONS: list[list[str]] = [
    # 1: files, one vector per content hash, model identity, text-embedding cache
    [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE images (
            id INTEGER PRIMARY KEY,          -- the label in the ANN index
            hash TEXT NOT NULL UNIQUE,
            vector BLOB NOT NULL,            -- float32, L2-normalized
            width INTEGER, height INTEGER,   -- upright size of the original
            taken_at TEXT,                   -- EXIF capture time, ISO 8601
            phash INTEGER,                   -- 64-bit DCT perceptual hash
            created_at REAL NOT NULL)""",
        """CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            path BLOB NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            hash TEXT,                       -- NULL if it failed before hashing
            status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
            error TEXT,
            indexed_at REAL NOT NULL)""",
        "CREATE INDEX files_hash ON files(hash)",
        "CREATE TABLE text_cache (text TEXT PRIMARY KEY, vector BLOB NOT NULL, created_at REAL NOT NULL)",
    ],
    # 2: zero-shot tags per content hash and label set (the model is the store's), see tagging/tagstore.py
    [
        """CREATE TABLE tags (
            hash TEXT NOT NULL REFERENCES images(hash) ON DELETE CASCADE,
            label_set TEXT NOT NULL,         -- the set's name: shipped name or label file stem
            label TEXT NOT NULL,             -- 'animals/dog'
            score REAL NOT NULL,             -- probability under the mode it was tagged in
            tagged_at REAL NOT NULL,
            PRIMARY KEY (hash, label_set, label))""",
        "CREATE INDEX tags_label ON tags(label COLLATE NOCASE)",
    ],
    # 3 (captioning): generated captions per content hash, captioner and decoding settings
    [
        """CREATE TABLE captions (
            hash TEXT NOT NULL,              -- content hash of the photo
            captioner TEXT NOT NULL,         -- hub repo, or architecture@weights digest
            method TEXT NOT NULL,            -- decoding settings (captioning.Decoding.key)
            rank INTEGER NOT NULL,           -- 1 = best by this store's MobileCLIP2
            text TEXT NOT NULL,
            cosine REAL NOT NULL,            -- MobileCLIP2 image-text cosine
            logprob REAL,                    -- the captioner's mean token log-probability
            created_at REAL NOT NULL,
            PRIMARY KEY (hash, captioner, method, rank))""",
    ],
    # 4: smart albums, saved queries (albums.py; spec is a FindSpec as JSON); an index for date filters
    [
        """CREATE TABLE albums (
            name TEXT PRIMARY KEY,
            spec TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            synced_to TEXT, synced_at REAL, synced_count INTEGER)""",
        # Date filters read taken_at, which sits after the vector in each images row: without a
        # covering index SQLite walks every vector's overflow pages (~2 KB each) to reach it.
        "CREATE INDEX images_hash_taken ON images(hash, taken_at)",
    ],
    # 5: a second perceptual signature for near-duplicate detection (see imaging.layout_signature);
    # NULL in rows indexed before, which dedup backfills from the files without re-embedding.
    [
        "ALTER TABLE images ADD COLUMN colors BLOB",  # 4x4 YCbCr layout, 48 bytes
        "ALTER TABLE images ADD COLUMN detail REAL",  # grey-level std of the 32x32 thumbnail
    ],
    # 6: the roots index walked, so a root whose drive is gone is recognized as offline and never pruned
    # (store/roots.py, indexing/roots.py). kind: 'root' (named by the user) or 'mount' (a mount point
    # found inside a root). st_dev: the device it was on when last seen online; files: its indexed
    # files then.
    [
        """CREATE TABLE roots (
            path BLOB PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('root', 'mount')),
            st_dev INTEGER,
            files INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL CHECK (state IN ('online', 'offline')),
            last_seen REAL,                  -- when last walked online
            checked_at REAL NOT NULL)""",
    ],
    # 7: videos (store/videos.py). The images row of a video holds its representative frame (the
    # one nearest the middle), so everything that needs one vector per content hash (tags, query
    # by example, dedup, export, the ANN index) keeps working unchanged; every frame's vector sits
    # in video_frames, which find searches too, to rank a video by its best frame. duration marks
    # a row as a video (NULL for photos); ended_at (creation time + duration) lets a date filter
    # match a video that was still recording at the window's start.
    [
        "ALTER TABLE images ADD COLUMN duration REAL",
        "ALTER TABLE images ADD COLUMN ended_at TEXT",
        """CREATE TABLE video_frames (
            hash TEXT NOT NULL REFERENCES images(hash) ON DELETE CASCADE,
            frame_s REAL NOT NULL,           -- presentation time of the frame, from the start
            vector BLOB NOT NULL,            -- float32, L2-normalized, like images.vector
            PRIMARY KEY (hash, frame_s))""",
        "CREATE INDEX images_hash_taken_ended ON images(hash, taken_at, ended_at)",
    ],
    # 8 (ocr): recognized text per content hash (ocr/textstore.py) and its full-text index. A photo
    # without text has a row with text '' (the detector ran); a failure has its reason in error.
    # FTS5 folds case and diacritics (remove_diacritics 2: "cafe" finds "Café") and is kept in
    # step with ocr by triggers, so every writer of ocr updates it in the same transaction.
    [
        """CREATE TABLE ocr (
            id INTEGER PRIMARY KEY,          -- the FTS rowid
            hash TEXT NOT NULL UNIQUE,       -- content hash of the photo
            engine TEXT NOT NULL,            -- 'rapidocr'
            version TEXT NOT NULL,           -- the engine's version
            models TEXT NOT NULL,            -- detection + recognition model files
            text TEXT NOT NULL,              -- rows in reading order, one per line; '' when none
            lines TEXT NOT NULL,             -- JSON: [{text, confidence, box, row}]
            confidence REAL,                 -- mean line confidence; NULL without text
            error TEXT,                      -- why it could not be read (then text is '')
            created_at REAL NOT NULL)""",
        "CREATE VIRTUAL TABLE ocr_fts USING fts5(text, content='ocr', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')",
        "CREATE TRIGGER ocr_ai AFTER INSERT ON ocr BEGIN "
        "INSERT INTO ocr_fts(rowid, text) VALUES (new.id, new.text); END",
        "CREATE TRIGGER ocr_ad AFTER DELETE ON ocr BEGIN "
        "INSERT INTO ocr_fts(ocr_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
        "CREATE TRIGGER ocr_au AFTER UPDATE ON ocr BEGIN "
        "INSERT INTO ocr_fts(ocr_fts, rowid, text) VALUES ('delete', old.id, old.text); "
        "INSERT INTO ocr_fts(rowid, text) VALUES (new.id, new.text); END",
    ],
    # 9 (dedup review): pairs of content hashes a person said are "not duplicates" (store/dismissals.py).
    # Kept by hash, not by file: the decision is about two pictures, wherever their copies are, and
    # survives a re-index or a move. No foreign key to images: a hash forgotten by a prune and indexed
    # again (or merged from another store) keeps its dismissals. The pair is in canonical order.
    [
        """CREATE TABLE dismissed_pairs (
            hash_a TEXT NOT NULL,            -- the smaller content hash
            hash_b TEXT NOT NULL,            -- the larger
            dismissed_at REAL NOT NULL,
            PRIMARY KEY (hash_a, hash_b),
            CHECK (hash_a < hash_b)) WITHOUT ROWID""",
        "CREATE INDEX dismissed_pairs_b ON dismissed_pairs(hash_b)",
    ],
]
