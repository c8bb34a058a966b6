"""Chat: messages, replies, pins and the moderation rules of an event's chat room."""
