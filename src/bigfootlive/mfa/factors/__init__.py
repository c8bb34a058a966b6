"""One module per kind of second factor, each implementing `mfa.base.Factor` (or `Method`)."""
