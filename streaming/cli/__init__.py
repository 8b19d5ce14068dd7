"""The ``medstream`` command (:mod:`streaming.cli.app`) and one module per subcommand: the top
of the stack, the only place that turns options into pipelines and prints to the terminal."""
