"""The batch job: recordings in files and folders → transcripts (txt, srt, vtt, json), with
entities and translations, resume and per-file errors; locally (:mod:`streaming.batch.job`) or
on a Ray cluster (:mod:`streaming.batch.ray_job`)."""
