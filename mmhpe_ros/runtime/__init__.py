"""Runtime core shared by bags and nodes: message codecs, time synchronisation. No rclpy here."""
