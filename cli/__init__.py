"""The `invites` program (SPEC §8): its verbs, their output, bulk import and `invites dev`."""
