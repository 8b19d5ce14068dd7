"""The pipeline that joins the stages: the segment enrichment both jobs share (entities and
translations), the transcript document, and the two jobs built on them — the batch job
(:mod:`streaming.batch`) and the live server (:mod:`streaming.live`) — with the ``medstream``
command on top (:mod:`streaming.cli`)."""
