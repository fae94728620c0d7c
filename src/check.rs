//! Checking: names and types. Turns parsed files into the checked program.
