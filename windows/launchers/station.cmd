@echo off
rem The station command line: station.cmd --version, station.cmd roster list --json ...
rem Runs the bundled Python beside this file; arguments and the exit code pass through.
"%~dp0python\python.exe" -m station %*
exit /b %ERRORLEVEL%
