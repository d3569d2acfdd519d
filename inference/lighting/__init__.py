"""Tools that work on a finished HDR environment map: the sun as a lamp (:mod:`.sun`)."""
