"""datumctl: pachctl-style verbs over the datum store."""
