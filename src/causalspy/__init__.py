from causalspy._version import __version__
