@echo off
rem Start the station and open its pages in the browser. Close this window to stop it.
title qm-station
"%~dp0python\python.exe" -m station serve --open %*
if errorlevel 1 pause
