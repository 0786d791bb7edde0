"""The library halves of the commands, each running one frozen configuration (:mod:`.configs`)."""
