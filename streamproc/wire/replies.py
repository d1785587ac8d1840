"""What a page offers for answering it, shared by the senders that put it in a page and the API
that takes the answer (spec: a claim by SMS reply, by a key pressed on a call, by a Slack button)."""

CLAIM_DIGIT = "2"
"""The key to press on a voice call to claim its incident (Twilio <Gather>)."""

CLAIM_ACTION_ID = "streamproc_claim"
"""The `action_id` of the Slack message's claim button."""
