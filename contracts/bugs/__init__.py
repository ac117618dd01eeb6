"""Bug reports against the exact artifact that produced an output: filing, resolution through the pin
and alias histories (or a signed output receipt), routing to the owning team, a staff workflow, and
the contract's written answer for artifacts that are gone."""
