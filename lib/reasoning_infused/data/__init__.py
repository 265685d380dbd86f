"""Data and tasks: a task file (tasks/), its rows, the generator's reasoning triples, the out-of-domain
sets, the label lexicon, and the versioned prompt formats (prompts/)."""
