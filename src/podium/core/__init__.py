"""Pure domain: specs, states, ids and errors. Imports nothing from the rest of Podium."""
