"""The conversation runtime's sans-I/O core: dialog model, loader, validation and the FSM.

Nothing here touches sockets, files other than the dialog being loaded, the clock or randomness:
``handle(session, event, now)`` returns the next session and the actions to issue.
"""
