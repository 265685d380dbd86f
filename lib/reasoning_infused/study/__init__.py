"""Above it, the study machinery: the study runner, preregistered ablations and their verdicts, the
reports, the generator sweep."""
