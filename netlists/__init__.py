"""Pure functions from frozen parameter dataclasses to ngspice deck text. May import models."""
