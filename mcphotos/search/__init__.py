"""Search: the query language, nearest photos with filters, relevance cut-offs, smart albums."""
