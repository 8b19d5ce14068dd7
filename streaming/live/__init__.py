"""The live server: websocket sessions of audio in, partials, finals, entities and translations
out (:mod:`streaming.live.protocol`), one shared recogniser (:mod:`streaming.live.engine`), the
FastAPI application (:mod:`streaming.live.server`), a client and the interpreter's web page."""
