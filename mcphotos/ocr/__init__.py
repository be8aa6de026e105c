"""Text inside photos: recognition (RapidOCR on ONNX Runtime), its store, and text search.

- ``engine``: the recognizer, loaded lazily (it costs a second), and reading order;
- ``decode``: the guarded decode of a photo for OCR (runs in the crash-isolating workers);
- ``textstore``: results per content hash, the FTS5 index, and the ``--contains`` query;
- ``runner``: an OCR pass over indexed photos, resumable, and on-the-fly recognition.

Nothing here imports rapidocr or onnxruntime at module level, and nothing imports torch.
"""
